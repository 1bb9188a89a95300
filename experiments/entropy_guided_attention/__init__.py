"""Experiment folder of `entropy_guided_attention`: Entropy-Guided Attention for Private LLMs.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/lm/entropy_guided_attention.py'
NOTE = ("regulariser equals the official EntropyRegularization (parity "
        "test); CPU study (2 seeds, 4-layer byte LM, 300 steps): entropic "
        "overload reproduced (softmax-only early heads all near-uniform, "
        "1.00 vs baseline 0.54-0.67); deep collapse not seen at 1e-3 "
        "(softmax-only diverged at 3e-3); guidance (temps + reg + weight "
        "norm) fixed neither, ppl 29.3 vs 27.8 softmax-only: not reproduced")

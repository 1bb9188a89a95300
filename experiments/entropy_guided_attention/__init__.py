"""Experiment folder of `entropy_guided_attention`: Entropy-Guided Attention for Private LLMs.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/lm/entropy_guided_attention.py'
NOTE = ("regulariser equals the official EntropyRegularization (parity "
        "test); CPU study pending")

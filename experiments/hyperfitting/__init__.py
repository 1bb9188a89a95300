"""Experiment folder of `hyperfitting`: The Hyperfitting Phenomenon: Sharpening and Stabilizing LLMs for Open-Ended Text Generation.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/lm/hyperfitting.py'
NOTE = ("CPU study (seed 0, stdlib docstrings, 0.46M params): greedy TTR 0.14 -> 0.23, rep-4 0.70 -> 0.21, held-out entropy 2.15 -> 0.71, held-out loss 2.10 -> 5.73 at train loss 0.007; but base top-p (TTR 0.25) stays more diverse than hyperfitted greedy")

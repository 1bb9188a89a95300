"""Experiment folder of `hyperfitting`: The Hyperfitting Phenomenon: Sharpening and Stabilizing LLMs for Open-Ended Text Generation.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/lm/hyperfitting.py'
NOTE = ("CPU study pending")

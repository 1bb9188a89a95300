"""Experiment folder of `ead`: Entropy Adaptive Decoding: Dynamic Model Switching for Efficient Inference.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/lm/ead.py'
NOTE = ("jitted two-model decoder (rolling entropy switch, random control, per-token compute accounting); CPU study pending")

"""Experiment folder of `ldr`: Label Distributionally Robust Losses for Multi-class Classification.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/noisy_labels/ldr.py'
NOTE = "CPU study not yet run"

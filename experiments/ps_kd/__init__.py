"""Experiment folder of `ps_kd`: Self-Knowledge Distillation with Progressive Refinement of Targets.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/distillation/ps_kd.py'
NOTE = ("CPU study measured (5 seeds, digits): claim not reproduced; CE is already calibrated there")

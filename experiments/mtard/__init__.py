"""Experiment folder of `mtard`: Mitigating the Accuracy-Robustness Trade-off via Balanced Multi-Teacher Adversarial Distillation.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/adversarial/mtard.py'
NOTE = ("not measured yet")

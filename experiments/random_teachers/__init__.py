"""Experiment folder of `random_teachers`: Random Teachers are Good Teachers.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/distillation/random_teachers.py'
NOTE = "CPU study not yet run"

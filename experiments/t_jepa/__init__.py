"""Experiment folder of `t_jepa`: T-JEPA, augmentation-free SSL for tables.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/ssl/t_jepa.py'
NOTE = "study pending"

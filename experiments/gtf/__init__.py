"""Experiment folder of `gtf`: Generalized Teacher Forcing for Learning Chaotic Dynamics.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/dynamics/gtf.py'
NOTE = ("CPU studies pending")

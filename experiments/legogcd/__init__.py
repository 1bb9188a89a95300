"""Experiment folder of `legogcd`: Solving the Catastrophic Forgetting Problem in Generalized Category Discovery.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/discovery/legogcd.py'
NOTE = "CPU study pending"

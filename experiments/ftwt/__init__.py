"""Experiment folder of `ftwt`: Fire Together Wire Together (dynamic pruning).

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/pruning/ftwt.py'
NOTE = "in progress"

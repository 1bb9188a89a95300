"""Experiment folder of `regnde`: Opening the Blackbox: Accelerating Neural Differential Equations by Regularizing Internal Solver Heuristics.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/dynamics/regnde.py'
NOTE = "in progress"

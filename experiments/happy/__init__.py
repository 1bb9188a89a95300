"""Experiment folder of `happy`: Happy: A Debiased Learning Framework for
Continual Generalized Category Discovery.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/discovery/happy.py'
NOTE = ("continual_gcd protocol + Happy/continual-SimGCD method; digits "
        "C-GCD study pending")

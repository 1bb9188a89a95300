"""Experiment folder of `cotta`: Continual Test-Time Domain Adaptation.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/tta/cotta.py'
NOTE = ("digits_c, 3 seeds x 10 rounds: CoTTA stable (19.0%) = BN-adapt, gate never fired; Tent degrades mildly (18.2 -> 20.8%); gate forced open without the flip: 17.7% vs Tent 18.2% in round 1, level in round 2")

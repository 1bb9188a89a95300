"""Experiment folder of `cotta`: Continual Test-Time Domain Adaptation.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/tta/cotta.py'
NOTE = ("digits_c, 3 seeds x 10 rounds: CoTTA stable (19.0%) = BN-adapt, gate never fired; Tent barely degrades; gate forced open without the flip: 17.7% vs Tent 18.5%")

"""Experiment folder of `cotta`: Continual Test-Time Domain Adaptation.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/tta/cotta.py'
NOTE = ("digits_c, 3 seeds x 10 rounds: CoTTA stable (19.0%) = BN-adapt, gate never fired; Tent degrades mildly (18.2 -> 20.8%); gate forced open without the flip: 17.7% vs Tent 18.2% in round 1, level in round 2; shapes32_c, 3 seeds x 2 rounds: Tent 33.3 -> 35.8%, CoTTA flat 33.2 -> 33.1% (= BN-adapt, gate fired on ~1% of batches)")

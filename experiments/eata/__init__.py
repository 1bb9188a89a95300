"""Experiment folder of `eata`: Efficient Test-Time Model Adaptation without Forgetting.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/tta/eata.py'
NOTE = ("digits_c, 3 seeds: EATA 18.1% vs Tent 18.2% continual error with 50% of samples in backward; clean error after adaptation not lower (5.3 vs 4.9; 5.2 at alpha 2000)")

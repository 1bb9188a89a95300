"""Experiment folder of `eata`: Efficient Test-Time Model Adaptation without Forgetting.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/tta/eata.py'
NOTE = ("digits_c, 3 seeds: EATA 18.3% vs Tent 18.5% continual error with 51% of samples in backward; clean error after adaptation not lower (6.5 vs 6.0; 5.8 at alpha 2000)")

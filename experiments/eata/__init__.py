"""Experiment folder of `eata`: Efficient Test-Time Model Adaptation without Forgetting.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/tta/eata.py'
NOTE = ("digits_c, 3 seeds, official update by default: EATA 18.1% vs Tent 18.2% continual error with 50% of samples selected; clean error after adaptation 5.0 vs Tent 4.9 (4.8 at alpha 2000): within the seed spread; shapes32_c, 3 seeds, calibrated source: EATA 32.4% vs Tent 33.3% / BN-adapt 33.2% continual error (lowest on every seed, 74% of samples), clean error after 22.1 vs Tent 23.7%")

"""Experiment folder of `pg_noise_mask`: Policy Gradient-Driven Noise Mask.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/regularizers/pg_noise_mask.py'
NOTE = "in progress"

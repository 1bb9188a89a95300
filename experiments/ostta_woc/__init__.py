"""Experiment folder of `ostta_woc`: Towards Open-Set Test-Time Adaptation Utilizing the Wisdom of Crowds in Entropy Minimization.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/tta/ostta_woc.py'
NOTE = ("digits_c open-set, 3 seeds x 10 rounds: not reproduced; selection "
        "60.2% vs Tent 35.7% known-class error in round 10 (21.5 vs 15.3% "
        "with the diversity term); shapes32_c open-set, 3 seeds x 3 "
        "rounds: reproduced against Tent (37.8 vs 44.6% in round 3, every "
        "seed), worse than BN-adapt (34.6%)")

"""Experiment folder of `happy`: Happy: A Debiased Learning Framework for
Continual Generalized Category Discovery.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/discovery/happy.py'
NOTE = ("digits C-GCD (4 old classes, 3 stages of 2 new, 3 seeds): "
        "prediction bias of continual SimGCD reproduced, Happy All 0.52 vs "
        "0.44 and New 0.35 vs 0.12 at the last stage (every seed, every "
        "stage); less forgetting not reproduced (Old 0.77 vs 0.93); "
        "hardness-aware sampling no better than uniform (Old 0.77 vs "
        "0.81); cifar100 config compiles, not run; paper tables not "
        "available here")

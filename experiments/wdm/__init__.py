"""Experiment folder of `wdm`: Wasserstein Dependency Measure for Representation Learning.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'reproduced on CPU'
ALGOS = 'algos/ot/wdm.py'
NOTE = ("CPU study (seeds 0-5, n digits), on every seed: n=1->4 probe acc CPC -9 to -12, WPC -3 to -7 points; WPC ahead at n=4 (1.6-2.7 points), behind at n<=2; n=3 undecided")

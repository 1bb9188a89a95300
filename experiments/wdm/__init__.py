"""Experiment folder of `wdm`: Wasserstein Dependency Measure for Representation Learning.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'reproduced on CPU'
ALGOS = 'algos/ot/wdm.py'
NOTE = ("CPU study (3 seeds, n digits): n=1->4 probe acc CPC -10.2, WPC -5.4 points; WPC ahead at n=4")

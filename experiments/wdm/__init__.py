"""Experiment folder of `wdm`: Wasserstein Dependency Measure for Representation Learning.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'reproduced on CPU'
ALGOS = 'algos/ot/wdm.py'
NOTE = ("CPU study (seeds 0-2 and 3-5, n digits): n=1->4 probe acc CPC -11, WPC -5 points; WPC ahead at n=4 (~2 points), behind at n<=2, tied at n=3")

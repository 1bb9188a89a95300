"""Experiment folder of `adaptive_mi`: Adaptive Estimators Show Information Compression in Deep Neural Networks.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/analysis/adaptive_mi.py'
NOTE = "in progress"

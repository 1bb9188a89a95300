"""Experiment folder of `dcov_fairness`: Machine Learning with Multitype Protected Attributes: Intersectional Fairness through Regularisation.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/fairness/dcov_fairness.py'
NOTE = "study pending"

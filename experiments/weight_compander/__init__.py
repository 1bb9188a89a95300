"""Experiment folder of `weight_compander`: Weight Compander: A Simple Weight Reparameterization for Regularization.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/regularizers/weight_compander.py'
NOTE = "(study pending)"

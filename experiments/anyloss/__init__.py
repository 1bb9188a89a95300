"""Experiment folder of `anyloss`: AnyLoss: Transforming Classification Metrics into Loss Functions.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/metric_losses/anyloss.py'
NOTE = "CPU study pending"

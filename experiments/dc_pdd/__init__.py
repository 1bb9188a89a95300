"""Experiment folder of `dc_pdd`: Pretraining Data Detection for Large Language Models: A Divergence-based Calibration Method.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/analysis/dc_pdd.py'
NOTE = ("pending study")

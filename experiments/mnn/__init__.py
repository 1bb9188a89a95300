"""Experiment folder of `mnn`: Large Language Model Evaluation via Matrix Nuclear-Norm.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/analysis/matrix_nuclear_norm.py'
NOTE = ("pending study")

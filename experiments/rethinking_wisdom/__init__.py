"""Experiment folder of `rethinking_wisdom`: Rethinking Conventional Wisdom in Machine Learning: From Generalization to Scaling.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/analysis/rethinking_wisdom.py'
NOTE = ("in progress")

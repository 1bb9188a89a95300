"""Experiment folder of `universality_lens`: The Universality Lens: Why Even Highly Over-Parametrized Models Learn Well.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/analysis/universality_lens.py'
NOTE = ("in progress")

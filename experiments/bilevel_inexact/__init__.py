"""Experiment folder of `bilevel_inexact`: MAID (adaptively inexact bilevel).

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/bilevel/maid.py'
NOTE = ("in progress")

"""Experiment folder of `gifd`: generative gradient inversion (an audit of
the privacy of shared gradients).

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/privacy/gifd.py'
NOTE = ("in progress")

"""Experiment folder of `adapt_unlearn`: unlearning a digit from a GAN.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/generative/adapt_unlearn.py'
NOTE = ("in progress")

"""Experiment folder of `vsae`: Analysis of Variational Sparse Autoencoders.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/interpretability/vsae.py'
NOTE = ("not yet measured")

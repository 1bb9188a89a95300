"""Experiment folder of `crrelu`: A Method on Searching Better Activation Functions (CRReLU).

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'common/models/activations.py'
NOTE = "(study pending)"

"""Experiment folder of `info_koopman`: Information Shapes Koopman Representation.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/dynamics/info_koopman.py'
NOTE = ("method, official InfoNCE / von Neumann terms (parity with the official torch code), CPU study pending")

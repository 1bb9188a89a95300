"""Experiment folder of `infinite_compute`: Pre-training under infinite compute.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/lm/infinite_compute.py'
NOTE = ("in progress")

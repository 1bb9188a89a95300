"""Experiment folder of `cce`: Cut Your Losses in Large-Vocabulary Language Models.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/lm/cce.py'
NOTE = ("pending: CPU study and memory benchmark")

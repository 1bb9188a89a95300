"""Experiment folder of `grok_corrupted`: To grok or not to grok: Disentangling generalization and memorization on corrupted algorithmic datasets.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/analysis/grok_ipr.py'
NOTE = ("not measured yet")

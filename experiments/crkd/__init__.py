"""Experiment folder of `crkd`: Class-relation Knowledge Distillation for Novel Class Discovery.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/discovery/crkd.py'
NOTE = ("not measured yet")

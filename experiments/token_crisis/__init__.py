"""Experiment folder of `token_crisis`: To Repeat or Not To Repeat: Insights from Scaling LLM under Token-Crisis.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/lm/token_crisis.py'
NOTE = ("CPU study pending")

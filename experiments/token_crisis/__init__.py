"""Experiment folder of `token_crisis`: To Repeat or Not To Repeat: Insights from Scaling LLM under Token-Crisis.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/lm/token_crisis.py'
NOTE = ("CPU study (seed 0, stdlib docstrings, 0.5M-token budget): repeating 16 epochs degrades held-out loss by +0.27 (0.1M params) and +0.50 (0.5M); dropout 0.1 shrinks the gap mainly by hurting the unique arm")

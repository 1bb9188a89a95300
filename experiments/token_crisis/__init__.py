"""Experiment folder of `token_crisis`: To Repeat or Not To Repeat: Insights from Scaling LLM under Token-Crisis.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/lm/token_crisis.py'
NOTE = ("CPU study (seeds 0-1, stdlib docstrings, 0.5M-token budget): 16 epochs of repetition degrade held-out loss in every pair (+0.16 to +0.36); larger-degrades-more and dropout-helps not shown (within seed spread)")

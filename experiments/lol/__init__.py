"""Experiment folder of `lol`: LoL: A Comparative Regularization Loss over Query Reformulation Losses for Pseudo-Relevance Feedback.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/retrieval/lol.py'
NOTE = "in progress"

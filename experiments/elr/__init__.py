"""Experiment folder of `elr`: Early-Learning Regularization Prevents Memorization of Noisy Labels.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/noisy_labels/elr.py'
NOTE = "in progress"

"""Experiment folder of `ecaml`: Energy Confused Adversarial Metric Learning for Zero-Shot Image Retrieval and Clustering.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/metric_losses/ecaml.py'
NOTE = "CPU study pending"

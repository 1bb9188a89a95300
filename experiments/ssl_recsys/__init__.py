"""Experiment folder of `ssl_recsys`: Self-supervised Learning for Large-scale Item Recommendations.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/recsys/ssl_recsys.py'
NOTE = "two-tower + logQ batch softmax + SSL (RFM / CFM); study pending"

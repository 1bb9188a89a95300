"""Experiment folder of `ssl_recsys`: Self-supervised Learning for Large-scale Item Recommendations.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/recsys/ssl_recsys.py'
NOTE = ("no official code; two-tower + logQ batch softmax + SSL (RFM / "
        "CFM by feature MI); synthetic Zipf catalogue (2k items, 3 seeds): "
        "tail Recall@50 16.3 -> 17.7 (RFM) -> 19.0 (CFM), CFM > RFM > base "
        "on every seed; overall +0.5, head -0.5; Recall@10 tail at floor; "
        "MovieLens proxy config not run")

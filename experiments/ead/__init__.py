"""Experiment folder of `ead`: Entropy Adaptive Decoding: Dynamic Model Switching for Efficient Inference.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/lm/ead.py'
NOTE = ("jitted two-model decoder (rolling-entropy switch, random control, per-token compute accounting; equals single-model greedy decoding at the limits, tested); "
        "arithmetic CPU study (seed 0, 1-layer vs 3-layer byte LMs, 300/600 steps): claim not testable, neither model solves the task (exact match 1.7% small, 1.1% large; held-out loss 2.20 vs 1.45); "
        "large-model share 0.83 -> 0 as the threshold goes 1 -> 3 nats")

"""Experiment folder of `ead`: Entropy Adaptive Decoding: Dynamic Model Switching for Efficient Inference.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/lm/ead.py'
NOTE = ("jitted two-model decoder (rolling-entropy switch, random control, per-token compute accounting; equals single-model greedy decoding at the limits, tested); "
        "addition CPU study (2 seeds, 2-layer d64 vs 4-layer d128 byte LMs, small 0.50 / large 0.89 exact match): "
        "'most of the large accuracy at a minority share' not reproduced (72.5% kept at share 0.40; paper 96.7% at 0.43); "
        "entropy beats random switching at the same share at 15 of 16 points (+0.035 mean, +0.07-0.09 at share ~0.13)")

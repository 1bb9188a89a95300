"""Experiment folder of `ulb_sapr`: Enhancing Ultra-Low-Bit Quantization of Large Language Models Through Saliency-Aware Partial Retraining.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/lm/ulb_sapr.py'
NOTE = ("quantiser codes bit-exact with the official UniformAffineQuantizer "
        "(parity test); CPU study pending")

"""Experiment folder of `ulb_sapr`: Enhancing Ultra-Low-Bit Quantization of Large Language Models Through Saliency-Aware Partial Retraining.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/lm/ulb_sapr.py'
NOTE = ("quantiser codes bit-exact with the official UniformAffineQuantizer "
        "(parity test); CPU study (2 seeds, 4-layer byte LM, 2 bits, group "
        "32): ppl FP 12.559, RTN 13.007, ApiQ 12.814, +saliency 12.808 "
        "(lambda 1e-2; = ApiQ at 1e-4 / 1e-3): ApiQ > RTN reproduced, "
        "saliency closes only 2-3% of ApiQ's gap: not reproduced; packed "
        "2-bit Llama-2-7B blocks 12.0x below fp32 (exact bytes)")

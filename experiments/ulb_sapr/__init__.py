"""Experiment folder of `ulb_sapr`: Enhancing Ultra-Low-Bit Quantization of Large Language Models Through Saliency-Aware Partial Retraining.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/lm/ulb_sapr.py'
NOTE = ("quantiser codes bit-exact with the official UniformAffineQuantizer "
        "(parity test); CPU study (1 seed, 4-layer byte LM, 2 bits, group "
        "32): ppl FP 13.246, RTN 13.660, ApiQ 13.492, +saliency 13.485 "
        "(lambda 1e-2; = ApiQ at 1e-4 / 1e-3): ApiQ > RTN reproduced, "
        "saliency closes only 3% of ApiQ's gap: not reproduced; packed "
        "2-bit Llama-2-7B blocks 12.0x below fp32 (exact bytes)")

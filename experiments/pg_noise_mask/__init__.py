"""Experiment folder of `pg_noise_mask`: Policy Gradient-Driven Noise Mask.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/regularizers/pg_noise_mask.py'
NOTE = ("shapes32 CPU study (6-layer ResNet, shapes 0-6, 16 + 4 epochs, 3 "
        "seeds): claim not reproduced; conventional ahead of PG-mask "
        "pretraining + fine-tuning on every seed, fine-tuned acc 76.2 vs "
        "72.6% (paired t p 0.02), unseen-shape probe 79.2 vs 72.0%; "
        "classifier on plain CE of the masks (no log-density gradient "
        "scale) 74.5 / 77.8%; policy only spreads its masks (std 0.27 -> "
        "0.30); one official train step matched (parity test); "
        "RadImageNet config not run")

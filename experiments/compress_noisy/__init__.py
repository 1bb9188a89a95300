"""Experiment folder of `compress_noisy`: Compressing Features for Learning with Noisy Labels.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/noisy_labels/compress_noisy.py'
NOTE = ("shapes32 sym40, 3 seeds, 30 epochs: claims not reproduced; "
        "Nested 59.8% vs CE 55.7 / Dropout 51.8% test error (above CE on "
        "every seed), Nested+Co-teaching 68.5 vs Co-teaching 55.0%; both "
        "cut memorisation (noisy label fitted on 34% / 13% of corrupted vs "
        "CE 74%) but fit clean labels less and still improve at epoch 30; "
        "std 32: 56.0 (= CE); parity with the official selection, "
        "truncation law and K choice; two-stage fine-tuning, asym, "
        "CIFAR/Clothing1M not run")

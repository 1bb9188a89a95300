"""Experiment folder of `compress_noisy`: Compressing Features for Learning with Noisy Labels.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/noisy_labels/compress_noisy.py'
NOTE = ("shapes32 sym40, 2 seeds, 30 epochs: claims not reproduced; "
        "Nested 60.8% vs CE 55.4 / Dropout 52.5% test error, Nested+"
        "Co-teaching 68.2 vs Co-teaching 54.5%; both cut memorisation "
        "(noisy label fitted on 34% / 14% of corrupted vs CE 73%) but fit "
        "clean labels less and are still improving at epoch 30; std 32: "
        "56.0 (= CE); parity with the official selection, truncation law "
        "and K choice; two-stage fine-tuning, CIFAR/Clothing1M not run")

"""Experiment folder of `elr`: Early-Learning Regularization Prevents Memorization of Noisy Labels.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/noisy_labels/elr.py'
NOTE = ("CPU study measured on digits (5 seeds): under 40% symmetric noise "
        "reproduced (CE test error 5% at epoch 7 -> 46%, ELR stays at 7%); "
        "under 40% asymmetric noise with the official (lambda, beta) not "
        "reproduced (ELR 22.6% vs CE 24.7%, still memorises), with the "
        "symmetric pair 11.5%; shapes32 symmetric 40% (3 seeds): ELR 35% vs "
        "CE 49%, CE peaks then rises; parity with the official loss to 1e-6; "
        "ELR+ (two nets, mixup, weight averaging; parity with the official "
        "ELR_plus loss to 1e-6) on digits symmetric 40% (3 seeds): 0.9% "
        "test error vs ELR 8.1% and CE 43%, 5.6% without the ELR term, "
        "mixup makes no difference there; CIFAR configs not run")

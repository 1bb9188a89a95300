"""Experiment folder of `mtard`: Mitigating the Accuracy-Robustness Trade-off via Balanced Multi-Teacher Adversarial Distillation.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/adversarial/mtard.py'
NOTE = ("digits MLP, eps 0.3, 3 seeds (clean / PGD-20 %): claim not "
        "reproduced; B-MTARD 93.8 / 6.2 vs PGD-AT 85.2 / 34.2, natural "
        "97.7 / 0.0, ARD 86.9 / 1.1 (more clean, far less robust than AT "
        "on every seed); KL summed over classes: 97.7 / 20.0; entropy "
        "balance does not converge in 1,320 steps (T_nat 1 -> 1.97); "
        "balancing rules equal the official loop's (test); CIFAR-10 "
        "config not run")

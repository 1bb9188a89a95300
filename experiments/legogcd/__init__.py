"""Experiment folder of `legogcd`: Solving the Catastrophic Forgetting Problem in Generalized Category Discovery.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/discovery/legogcd.py'
NOTE = ("loss and gradients equal the official train.py/model.py step "
        "(parity test, 1e-9); digits GCD (old 0-4, 50% labelled), 3 seeds: "
        "claim not reproduced, SimGCD does not forget (Old 0.99 on every "
        "seed); LegoGCD Old 0.93 +- 0.11 (one seed 0.81), New 0.79 vs 0.79, "
        "All 0.83 vs 0.86, within the seed spread; shapes32 (1 seed, 12 "
        "epochs from scratch): both arms near chance, uninformative; "
        "CIFAR-100 not run")

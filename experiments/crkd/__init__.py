"""Experiment folder of `crkd`: Class-relation Knowledge Distillation for Novel Class Discovery.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/discovery/crkd.py'
NOTE = ("digits NCD (0-4 known, 5-9 novel), 5 seeds, 60 epochs: claim not "
        "reproduced; task-aware novel accuracy CRKD 0.660 vs UNO 0.733 "
        "(lower on every seed), alpha 0.02: 0.681 (at or above CRKD, below "
        "UNO, every seed); shapes32 (15-epoch stages, 2 seeds): CRKD above "
        "UNO on both seeds (0.467 vs 0.426); loss and gradient equal the "
        "official KD / swapped prediction / Sinkhorn (parity test); the "
        "official 'learnable weighting' is the student's own known-class "
        "mass, not detached; CIFAR-100 config not run")

"""Experiment folder of `ps_kd`: Self-Knowledge Distillation with Progressive Refinement of Targets.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/distillation/ps_kd.py'
NOTE = ("CPU studies measured: digits (5 seeds), claim not reproduced (CE "
        "already calibrated; PS-KD ECE higher on every seed); shapes32 "
        "(3 seeds): the small CNN under-fits in the CPU budget (CE 43% "
        "error, ECE 25%), PS-KD worse in error on every seed; the paper's "
        "regime (fitted, over-confident CE) not reached on CPU")

"""Experiment folder of `ps_kd`: Self-Knowledge Distillation with Progressive Refinement of Targets.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/distillation/ps_kd.py'
NOTE = ("CPU studies measured: digits (5 seeds), claim not reproduced (CE "
        "already calibrated; PS-KD ECE higher on every seed); shapes32 "
        "(6-layer ResNet, 3 seeds, CE over-confident at 21.5% error): "
        "calibration claim reproduced (ECE-15 8.0 -> 1.0%, NLL 0.70 -> "
        "0.62, every seed), error not lower (22.2 vs 21.5%)")

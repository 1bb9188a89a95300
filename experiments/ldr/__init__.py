"""Experiment folder of `ldr`: Label Distributionally Robust Losses for Multi-class Classification.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/noisy_labels/ldr.py'
NOTE = ("losses equal the official loss.py to 1e-6; digits, 7 noise "
        "settings x 3 seeds: ALDR-KL stable (4.1-9.9% error), beats CE only "
        "under heavy noise (sym60 9.9 vs 12.9%), GCE and LDR-KL lower on "
        "most settings; shapes32 sym60, 2 seeds: ALDR-KL best (44.1 vs CE "
        "62.1, GCE 48.7%); at the official lambda 10 the per-example "
        "lambdas move < 2%")

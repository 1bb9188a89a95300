"""Experiment folder of `anyloss`: AnyLoss: Transforming Classification Metrics into Loss Functions.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/metric_losses/anyloss.py'
NOTE = ("CPU study, 10-fold CV (seeds 0-9), paper's MLP and budget: "
        "AnyLoss(F1) F1 0.638 (paper 0.637) generated / 0.903 breast "
        "cancer vs BCE 0.000 (BCE still all-negative after 100 epochs at "
        "1e-3); vs converged BCE (lr 1e-2): generated 0.632 vs 0.597, "
        "8/10 folds; breast cancer 0.849 = 0.849 (lr 1e-2), 0.819 vs 0.785 "
        "(500 epochs: 2 better, 8 tied), within noise; "
        "AnyLoss(BAcc) stalls on 1-2/10 folds")

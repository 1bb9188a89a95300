"""Experiment folder of `aem`: AEM: Attention Entropy Maximization for Multiple Instance Learning based Whole Slide Image Classification.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'reproduced on CPU'
ALGOS = 'algos/mil/aem.py'
NOTE = ("MIL bags of embedded digits (positive iff a 7), official ABMIL and "
        "optimisation; 50 training bags, 5 seeds: AEM (lambda 0.1) bag AUC "
        "0.947 vs ABMIL 0.809, higher on every seed, instance AUC 0.99 vs "
        "0.83, attention entropy 0.80 vs 0.21 of log n; 200 bags (3 seeds) "
        "both near 1, AEM ahead on every seed by < 0.01; with 2,500 steps "
        "AEM was worse; parity of forward and gradients with the official "
        "train step; CAMELYON16 config not run")

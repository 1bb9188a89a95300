"""Experiment folder of `weight_compander`: Weight Compander: A Simple Weight Reparameterization for Regularization.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/regularizers/weight_compander.py'
NOTE = ("compander form NOT verified (paper body not readable offline; tanh "
        "/ arctan family from the abstract, a config switch); claim not "
        "reproduced: digits_small small CNN (5 seeds) baseline 4.06 vs WC "
        "4.61 vs WC-learned 4.17% error (sign p 0.38 / 0.74), shapes32 "
        "ResNet (3 seeds) WC worse on every seed, 22.3 -> 24.4%; effective "
        "weights as described: max |w| 8.1 -> 2.8 init units, near-zero "
        "fraction halved; learnable bounds grow and undo it; CIFAR-100 "
        "config not run")

"""Experiment folder of `adaptive_mi`: Adaptive Estimators Show Information Compression in Deep Neural Networks.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/analysis/adaptive_mi.py'
NOTE = ("12-bit task, 12-10-7-5-4-3-2, full-batch Adam 1500 epochs, 3 seeds; EBAB equals the official set_up_bins + plug-in MI (parity test): "
        "L2 increases late compression on every seed and estimator (EBAB ReLU 0.3-1.0 -> 2.2-9.5 bits summed over layers) and lowers test error; "
        "ReLU/ELU late compression only 0.1-0.4 bits (within seed spread; ReLU T5 >= 10% drop fails), tanh up to 4.2 bits; "
        "last-layer-only link to generalisation not reproduced (across arms middle layers correlate most, T3 rho -0.70; over 8 tanh inits no layer consistent across estimators); paper tables not read here; official full-length config not run")

"""Experiment folder of `monge_gap`: The Monge Gap: A Regularizer to Learn All Transport Maps.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/ot/monge_gap.py'
NOTE = ("CPU study (seeds 0-5): Gaussian error to the true map 9-47x lower on every seed, map cost lower (13.9->10.8 on seeds 0-2, by 0.1 on seed 4); mixtures underfit (not shown); ICNN dual (ott's step, ported) reaches equal fit only from ott's Gaussian init, on some seeds (1/3)")

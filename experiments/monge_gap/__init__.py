"""Experiment folder of `monge_gap`: The Monge Gap: A Regularizer to Learn All Transport Maps.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/ot/monge_gap.py'
NOTE = ("CPU study (3 seeds): Gaussian map cost 13.9->10.8, error 3.3->0.11 at equal fit; mixtures underfit (not shown); ICNN dual (ott's step, ported) reaches equal fit only from ott's Gaussian init, on some seeds (1/3)")

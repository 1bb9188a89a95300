"""Experiment folder of `monge_gap`: The Monge Gap: A Regularizer to Learn All Transport Maps.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/ot/monge_gap.py'
NOTE = ("CPU study (3 seeds): Gaussian map cost 13.8->11.8, error 2.8->0.08 at equal fit; mixtures underfit (not shown); ICNN dual reaches equal fit on 2/3 seeds only from ott's Gaussian init")

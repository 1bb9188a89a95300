"""Experiment folder of `bilevel_inexact`: MAID (adaptively inexact bilevel).

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/bilevel/maid.py'
NOTE = ("iterates equal the official MAID.py on its quadratic (parity test, "
        "REGJAX_OFFICIAL_MAID_DIR); CPU studies at 10^4 lower-level "
        "iterations: TV (2 seeds) both claims hold (MAID 1.900 vs HOAG "
        "1.99-2.00, >4x fewer iterations to within 1% of best, robust to "
        "eps0 >= 1e-3 and step x0.1-x10); quadratic (3 seeds) robust, gap "
        "3.0e-2 vs HOAG 4.6e-2, HOAG faster early; digits logistic (2 "
        "seeds) not reproduced (HOAG-geometric 0.164 vs MAID 0.181-0.277; "
        "0.167 with the official uncertified mu = L - 1e-3); "
        "eps0=1e-5 fails in float32; FoE not done")

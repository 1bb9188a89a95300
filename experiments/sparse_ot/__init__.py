"""Experiment folder of `sparse_ot`: Sparsity-Constrained Optimal Transport.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/ot/sparse_ot.py'
NOTE = ("CPU study (seeds 0-5): nnz <= k exact, k=1 = EMD, semi-dual value >= POT's in every cell; cost in [EMD, quad OT] fails on some seeds at binding k (plans at the non-smooth optimum are not unique and miss row marginals, as POT's do); solver 25-33x faster than POT at n = 1000-2000 (loaded CPU); OT routing drops 1% vs 26% tokens, accuracy gain within seed spread")

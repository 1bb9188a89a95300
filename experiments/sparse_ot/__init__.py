"""Experiment folder of `sparse_ot`: Sparsity-Constrained Optimal Transport.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/ot/sparse_ot.py'
NOTE = ("CPU study (3 seeds): nnz <= k exact, k=1 = EMD, float64 solver reaches POT's semi-dual optimum at every k; cost in [EMD, quad OT] except seed 0 at k=2, seed 1 at k=3 (plans at the non-smooth optimum are not unique and miss row marginals, as POT's do); OT routing drops 0.9% vs 26% tokens, +2.7 acc")

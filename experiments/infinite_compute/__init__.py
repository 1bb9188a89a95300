"""Experiment folder of `infinite_compute`: Pre-training under infinite compute.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/lm/infinite_compute.py'
NOTE = ("CPU study (byte LMs d16/d32/d64, 8,192 unique stdlib tokens x 32 epochs, 2 seeds): tuned weight decay grows with size, 32x default at d64 (3.064 vs 3.153); default-wd parameter scaling stalls (asymptote 3.152 [3.130, 3.165]), tuned keeps falling (E 2.945, wide CI); ensembles (vmap, K=1/2/4 of d32: 3.156/3.122/3.094) do not reach a lower asymptote (2.986, lower in 44% of resamples); distilled d32 student (half the steps) beats plain on both seeds but keeps only 11% of the K=4 gain (paper 83%)")

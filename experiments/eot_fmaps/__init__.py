"""Experiment folder of `eot_fmaps`: Integrating Efficient Optimal Transport and Functional Maps For Unsupervised Shape Correspondence Learning.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/ot/eot_fmaps.py'
NOTE = ("CPU study (3 seeds, synthetic blobs): claim not reproduced; SW and refinement within seed noise")

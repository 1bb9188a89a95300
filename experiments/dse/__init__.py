"""Experiment folder of `dse`: Assessing Neural Network Representations During Training Using Noise-Resilient Diffusion Spectral Entropy.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/analysis/dse.py'
NOTE = ("in progress")

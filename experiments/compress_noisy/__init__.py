"""Experiment folder of `compress_noisy`: Compressing Features for Learning with Noisy Labels.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/noisy_labels/compress_noisy.py'
NOTE = "CPU study pending"

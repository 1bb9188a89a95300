"""Experiment folder of `noise2score`: Tweedie denoising without clean images.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/denoising/noise2score.py'
NOTE = "CPU study pending"

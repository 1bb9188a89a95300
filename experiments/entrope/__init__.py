"""Experiment folder of `entrope`: EntroPE: Entropy-Guided Dynamic Patch Encoder for Time Series Forecasting.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/timeseries/entrope.py'
NOTE = ("CPU study pending")

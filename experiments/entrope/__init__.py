"""Experiment folder of `entrope`: EntroPE: Entropy-Guided Dynamic Patch Encoder for Time Series Forecasting.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/timeseries/entrope.py'
NOTE = ("CPU study (3 seeds, regime-switching AR, L=48, H=24): forecast claim not reproduced, EntroPE ties fixed-size patches at equal mean count (MSE 2.78 vs 2.79, lower on 2/3 seeds); boundaries above chance but weak (F1 0.26 vs 0.23 fixed, every seed; precision 0.16, survey check F1 >= 0.5 fails); relative rule worse; ETT/Weather/ECL configs not run")

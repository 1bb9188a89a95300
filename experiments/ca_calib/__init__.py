"""Experiment folder of `ca_calib`: Optimizing Calibration by Gaining Aware of Prediction Correctness.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/calibration/ca_calib.py'
NOTE = "measurement pending"

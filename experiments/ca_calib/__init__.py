"""Experiment folder of `ca_calib`: Optimizing Calibration by Gaining Aware of Prediction Correctness.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/calibration/ca_calib.py'
NOTE = ("CPU studies: digits (3 seeds) and shapes32 (seed 0): claim not "
        "reproduced; official class-balanced CA loss lowers confidence "
        "everywhere: clean ECE 25.9 vs TS 5.7 (digits), 14.9 vs 3.1 "
        "(shapes32); corrupted level with TS on digits (33.0 vs 33.1), "
        "worse on shapes32 (11.9 vs 8.9); unbalanced CA = TS")

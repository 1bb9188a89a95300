"""Experiment folder of `gtf`: Generalized Teacher Forcing for Learning Chaotic Dynamics.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/dynamics/gtf.py'
NOTE = ("CPU, 2 seeds, 8000 steps (official 250k): Lorenz-63: aGTF lowest D_stsp "
        "(1.96 vs sparse TF 4.03, GTF alpha 0.3 3.46, BPTT 16.2) and D_H (0.19 vs "
        "0.25/0.27/0.59) on both seeds, BPTT collapses with max grad norm "
        "4.6e3-8.8e3 vs <1 under GTF; fixed alpha 0.3 on a par with sparse TF; "
        "Roessler: not reproduced (sparse TF best D_H/PE, GTF grad spikes on one "
        "seed); exact bounded-gradient test on a chaotic tent-map shPLRNN")

"""Experiment folder of `regnde`: Opening the Blackbox: Accelerating Neural Differential Equations by Regularizing Internal Solver Heuristics.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/dynamics/regnde.py'
NOTE = ("own adaptive Dormand-Prince 5(4) (diffrax exposes no per-step error "
        "estimates; ours matches diffrax Dopri5 steps/NFE/solution); digits "
        "NODE classifier, 2 seeds, 6 epochs: ERNODE prediction NFE 44 -> 32 "
        "(-27%) and training NFE 41 -> 27-32 on both seeds, but error 3.5% "
        "-> 10.7% (official weight) / 5.1% (10x weaker): equal accuracy not "
        "reproduced in this budget; SRNODE and STEER: no NFE change; spiral "
        "fit at the NFE floor (not informative); MNIST/PhysioNet not run")

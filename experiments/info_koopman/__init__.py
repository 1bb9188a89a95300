"""Experiment folder of `info_koopman`: Information Shapes Koopman Representation.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/dynamics/info_koopman.py'
NOTE = ("CPU study (Lorenz-63, Van der Pol; 3 seeds): latent effective rank higher with the Lagrangian on every seed (10.6 vs 6.6; 8.2 vs 4.4), lower rollout error not reproduced: plain KAE better on every seed (valid steps 30 vs 27, 41 vs 30; RMSE at 16 steps about 2x lower); K unstable in every arm (radius 1.02-1.11); official code's entropy sign is the opposite of the paper's (both run); InfoNCE / S_vN equal the official torch code; official per-batch least-squares K is `method.info_koopman.operator=least_squares` (variant `least_squares`, default stays `learned`): plain KAE still better or tied, both arms weak (Lorenz-63 <= 5 valid steps), K stable (radius 0.78-0.96) but free runs decay; CFDBench not run")

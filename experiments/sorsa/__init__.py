"""Experiment folder of `sorsa`: SORSA: Singular Values and Orthonormal Regularized Singular Vectors Adaptation of Large Language Models.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/peft/sorsa.py'
NOTE = ("adapters as a params transform (common/models/peft.py: LoRA/PiSSA/SORSA init, merge; init and calc_ortho equal the official code); "
        "stdlib -> arithmetic CPU study, rank 4, 120 steps, seeds 0-1: orthonormality kept only with the regulariser (4.8e-5 vs 0.82) reproduced; "
        "faster/lower not reproduced: SORSA mean train loss 3.07 vs LoRA 2.99 / PiSSA 2.70 / SORSA without regulariser 2.61, held-out 3.157 vs 3.139 / 3.053 / 3.028; Llama-2-7B config not run")

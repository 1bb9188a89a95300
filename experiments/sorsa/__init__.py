"""Experiment folder of `sorsa`: SORSA: Singular Values and Orthonormal Regularized Singular Vectors Adaptation of Large Language Models.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/peft/sorsa.py'
NOTE = ("adapters as a params transform (common/models/peft.py: LoRA/PiSSA/SORSA init, merge; init and calc_ortho equal the official code); "
        "stdlib -> arithmetic CPU study, rank 4, 120 steps, seed 0 only: orthonormality kept only with the regulariser (4e-5 vs 0.88) reproduced; "
        "faster/lower not reproduced: SORSA mean train loss 3.04 vs LoRA 2.91 / PiSSA 2.73 / SORSA without regulariser 2.67, held-out 3.151 vs 3.146 / 3.136 / 3.113; Llama-2-7B config not run")

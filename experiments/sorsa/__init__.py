"""Experiment folder of `sorsa`: SORSA: Singular Values and Orthonormal Regularized Singular Vectors Adaptation of Large Language Models.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/peft/sorsa.py'
NOTE = ("adapters as a params transform (common/models/peft.py: LoRA, PiSSA, SORSA, merge); CPU study pending")

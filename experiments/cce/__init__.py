"""Experiment folder of `cce`: Cut Your Losses in Large-Vocabulary Language Models.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'reproduced on CPU'
ALGOS = 'algos/lm/cce.py'
NOTE = ("CPU study (2 seeds, stdlib tiny LM): CCE loss curve bitwise equal "
        "for 30-40 steps, then within the float-rounding control's drift; "
        "loss+grad temp memory 268x (fused: 50x) below naive at N=8192, "
        "V=131072 (fp32); idle CPU time on random logits: cce 1.21x naive, "
        "cce fused 0.99x (official torch.compile path 0.99x); peaked: "
        "0.61x / 0.82x; "
        "bf16 on XLA:CPU only 4x (classifier upcast hoisted)")

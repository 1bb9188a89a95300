"""Experiment folder of `cce`: Cut Your Losses in Large-Vocabulary Language Models.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'reproduced on CPU'
ALGOS = 'algos/lm/cce.py'
NOTE = ("CPU study (2 seeds, stdlib tiny LM): CCE loss curve bitwise equal "
        "for 30-40 steps, then within the float-rounding control's drift; "
        "loss+grad temp memory 237x below naive at N=8192, V=131072 (fp32); "
        "CPU time 1.08x naive on random logits, 0.51x on peaked ones; "
        "bf16 on XLA:CPU only 4x (classifier upcast hoisted)")

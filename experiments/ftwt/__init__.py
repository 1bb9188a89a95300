"""Experiment folder of `ftwt`: Fire Together Wire Together (dynamic pruning).

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/pruning/ftwt.py'
NOTE = ("targets / criterion / mask loss equal the official code (parity "
        "test); claim not reproduced: at matched FLOPs static L1-norm "
        "pruning + the same fine-tuning is as or more accurate; digits (3 "
        "seeds) 0.93 vs FTWT 1.48% error at 51.4% FLOPs reduction (FTWT "
        "worse on every seed), 0.74 vs 0.93% at 28.5%; shapes32 (1 seed) "
        "16.3 vs 19.4% at 34% (dense 15.3%); gates input-dependent but "
        "weakly (FLOPs ratio std 0.02-0.03), official softmax predictor "
        "input-independent in our short runs; CIFAR-10 ResNet-56 config "
        "not run")

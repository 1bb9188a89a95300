"""Experiment folder of `grok_corrupted`: To grok or not to grok: Disentangling generalization and memorization on corrupted algorithmic datasets.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'reproduced on CPU'
ALGOS = 'algos/analysis/grok_ipr.py'
NOTE = ("p=97, xi=0.35, width 500, 2 seeds: wd=0 memorises (94.6% corrupted) and generalises (98.4% test); pruning IPR<0.5 neurons -> 0% corrupted, 100% test on every arm/seed (random pruning does not); wd=15 ignores corrupted labels (train 65.3%, test 100%), matching the official notebook to <1 point; phase grid (1 seed): wd removes memorisation at xi=0.2; at xi=0.5 wd=15 only half unlearnt after 2000 steps (49.5%, test 99%), wd=5 not")

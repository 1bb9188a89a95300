"""Experiment folder of `ecaml`: Energy Confused Adversarial Metric Learning for Zero-Shot Image Retrieval and Clustering.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/metric_losses/ecaml.py'
NOTE = ("zero-shot digits (train 0-4, retrieve 5-9), MLP + official N-pair "
        "layer, 5 seeds: energy confusion at the official weight raises "
        "Recall@1 on every seed (0.925 vs 0.894, two seeds by < 0.01), NMI "
        "higher on 3/5 only (0.39 vs 0.32, inside the spread); lambda 1 no "
        "better; both Caffe layers matched by loops over their arithmetic; "
        "no runnable full-scale config (GoogLeNet + CUB/CARS not in the zoo)")

"""Experiment folder of `t_jepa`: T-JEPA, augmentation-free SSL for tables.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/ssl/t_jepa.py'
NOTE = ("CPU studies (3 seeds, ridge probe with LOO ridge, 1/10/100% labels): "
        "claims not reproduced at this scale; generated 3000x30, 400 steps: "
        "embedding vs raw 81.0 vs 83.2 (1%), 92.1 vs 91.7 (10%), 94.2 vs "
        "92.8 (100%), but the untrained-encoder control scores the same "
        "(81.8 / 91.9 / 94.2); wine: T-JEPA = untrained encoder; no "
        "collapse without reg tokens (emb std 0.075 vs 0.069, eff. rank "
        "29.1 vs 28.9; nor at 2000 steps, seed 0: 0.397 vs 0.394); loss and predictions equal the official "
        "Encoder/Predictors/MSELoss (parity test, 1e-5); full-scale "
        "AD/HE/JA/AL/CA/HI configs not run")

"""Experiment folder of `dcov_fairness`: Machine Learning with Multitype Protected Attributes: Intersectional Fairness through Regularisation.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/fairness/dcov_fairness.py'
NOTE = ("generated insurance-like regression (gender, age, region; xor "
        "interaction invisible to each attribute alone), MLP, 3 seeds, "
        "lambda sweeps: at matched test MSE (+5..+100%) JdCov and CCdCov "
        "leave lower intersectional disparity than the marginal dCov sum on "
        "every seed (max subgroup JS at +50% MSE: 0.096 / 0.116 vs 0.154; "
        "marginal sum barely moves it); dCov equals dcor (V and U); paper "
        "tables not readable offline; COMPAS config not run")

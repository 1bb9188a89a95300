"""Experiment folder of `dcov_fairness`: Machine Learning with Multitype Protected Attributes: Intersectional Fairness through Regularisation.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'reproduced on CPU'
ALGOS = 'algos/fairness/dcov_fairness.py'
NOTE = ("generated insurance-like table (gender, age, region protected; MLP, "
        "3 seeds, lambda sweeps, disparity read at matched test loss): with "
        "an xor interaction invisible to each attribute alone, JdCov and "
        "CCdCov leave lower intersectional disparity than the marginal dCov "
        "sum at every matched loss on every seed (max subgroup JS at +50% "
        "MSE 0.096 / 0.116 vs 0.154; classification at +5% BCE 0.055 / "
        "0.079 vs 0.145; same with U-statistics), the marginal sum barely "
        "moves it; with a visible corner interaction JdCov slightly ahead, "
        "CCdCov level with the marginal sum; dCov / JdCov equal dcor and "
        "the reference formulas; paper tables not readable offline; COMPAS "
        "config not run")

"""Experiment folder of `crrelu`: A Method on Searching Better Activation Functions (CRReLU).

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'common/models/activations.py'
NOTE = ("activation by name in mlp / small_cnn / new vit; claim not "
        "reproduced on digits: ViT (2x2 patches, 5 seeds) GELU 9.7 vs "
        "CRReLU 10.4 vs ReLU 10.4% error, spread ~3 points, no pair "
        "differs (p >= 0.45); MLP (5 "
        "seeds) CRReLU 6.56 vs GELU 6.94 vs ReLU 7.06%, below ReLU on 4/5 "
        "(sign p 0.125), GELU = ReLU; learned eps small in the ViT "
        "(|eps| < 0.07, either sign) but 0.37 in the MLP; CIFAR-10 config "
        "not run")

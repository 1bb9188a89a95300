"""Experiment folder of `gifd`: generative gradient inversion (an audit of
the privacy of shared gradients).

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/privacy/gifd.py'
NOTE = ("CPU study (2 seeds x 4 target batches, 8x8 digits, DCGAN-lite "
        "trained on 0-4, small CNN victim, equal 300-step budgets): GIFD > "
        "latent-only PSNR in 11/12 (arm, seed, in/ood) cells (e.g. batch 4 "
        "ood 19.0 vs 11.8 dB) and > pixel-space in distribution everywhere; "
        "'pixel-space last' not reproduced: batch 1 at init, pixel-space "
        "is best ood (34.1 vs GIFD 14.6 dB; 64 unknowns vs ~24k gradient "
        "entries); iDLG labels all right; paper tables not available here")

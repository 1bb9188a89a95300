"""Experiment folder of `noise2score`: Tweedie denoising without clean images.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/denoising/noise2score.py'
NOTE = ("CPU study (2 seeds, 300 steps, width-16 U-Net, 32x32 embedded patches): claim not reproduced at this budget; N2S +3.4 dB (Gaussian), +1.8 dB (Gamma) over noisy, 5.6-6.7 dB below supervised; Poisson N2S below noisy (20.6 vs 25.1); blind level close to the known-level PSNR (within 0.2 dB); Tweedie formulas tested exact vs closed-form posteriors")

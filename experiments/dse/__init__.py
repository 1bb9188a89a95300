"""Experiment folder of `dse`: Assessing Neural Network Representations During Training Using Noise-Resilient Diffusion Spectral Entropy.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/analysis/dse.py'
NOTE = ("DSE/binned entropy/DSMI equal the official dse_dsmi (parity test); intrinsic dimension (n=500 in R^100, d=1..10, 3 seeds): DSE Spearman 1.00 at every noise std 0-1 while binned entropy saturates at log2 n (Spearman 0.89 at noise 0, ~0 with any noise); sigma 3 needs t=5 against noise 0.5 (spread 0.36 -> 8.35 bits); digits MLP (3 seeds): DSMI(Z;Y test) 0.30 at init -> 1.33 bits with true labels; with random labels (99% memorised) it still rises to 0.69 at the official sigma 10 (feature scale grows), falls 0.84 -> 0.51 on rms-normalised features (true labels 0.84 -> 1.72): 'flat' only relative to true labels; cifar10 config not run")

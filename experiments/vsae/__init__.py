"""Experiment folder of `vsae`: Analysis of Variational Sparse Autoencoders.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/interpretability/vsae.py'
NOTE = ("toy superposition (512 features in 64-d, k=8, 3 seeds) + tiny-LM residual stream (2 seeds): "
        "vSAE underperforms TopK SAE on every seed (toy nMSE 0.41-1.86 vs 0.23, GT recovery 0.37-0.67 vs 0.94); "
        "more dead latents with weak/no KL (toy 25-36% vs 1%, LM 65-85% vs 41-71%), strong KL collapses the means instead (L0 < k); "
        "'independence' win only on proxies (decoder overlap 0.39 vs 0.41); no Pythia/SAE-Bench")

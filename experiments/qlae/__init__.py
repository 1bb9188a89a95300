"""Experiment folder of `qlae`: Disentanglement via Latent Quantization.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/disentanglement/qlae.py'
NOTE = ("CPU study (3 seeds, generated dSprites): QLAE best InfoM/InfoE, but 2x AE's MSE; quantization matters, weight decay did not")

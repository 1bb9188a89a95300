"""Experiment folder of `adapt_unlearn`: unlearning a digit from a GAN.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/generative/adapt_unlearn.py'
NOTE = ("CPU study (digits 8x8 DCGAN-lite, unlearn 0, 2 seeds, 400 steps): adaptation with EWC 11.5% -> 82% zeros; every arm ends < 2% zeros incl. positives-only (1.5%); EL2/IL2 (gamma 1) faster (1.0/0.3% vs 2.6% at 50 steps) but FD to real non-0 4.7 -> 13.4 (baseline 6.7); NL2 gamma 1 = baseline within spread; NL2 gamma 1e4 collapses: claim not reproduced as stated; paper tables not read here; full (32x32) config not run")

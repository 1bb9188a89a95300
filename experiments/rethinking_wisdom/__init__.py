"""Experiment folder of `rethinking_wisdom`: Rethinking Conventional Wisdom in Machine Learning: From Generalization to Scaling.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/analysis/rethinking_wisdom.py'
NOTE = ("position paper, tools built (shared scaling_laws: power-law fits with asymptote, bootstrap CIs, crossover with CI; equal-token arms, paired regularisation benefit); CPU probes (d16-d64 byte LMs, 131k tokens, 2 seeds): none of the three statements shows; wd 0.8 hurts multi-epoch (-0.015 nats) and helps one pass (+0.023); batch 8 / lr 6e-3 beats batch 64 by 0.60 nats at equal tokens (step-limited); no b8/b64 crossover over sizes (0% of resamples)")

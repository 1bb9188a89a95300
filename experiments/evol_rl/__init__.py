"""Experiment folder of `evol_rl`: Evolving Language Models without Labels: Majority Drives Selection, Novelty Promotes Variation.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/rl/evol_rl.py'
NOTE = ("label-free GRPO on generated arithmetic: TTRL (majority reward) vs EVOL-RL (majority sign + novelty band); reward parity with the official reward manager (1e-6)")

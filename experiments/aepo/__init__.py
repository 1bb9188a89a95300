"""Experiment folder of `aepo`: Arbitrary Entropy Policy Optimization: Entropy Is Controllable in Reinforcement Fine-tuning.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = "implemented"
ALGOS = "algos/rl/aepo.py"
NOTE = "study pending"

"""Experiment folder of `qarl`: Robust Adversarial Reinforcement Learning via Bounded Rationality Curricula.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/rl/qarl.py'
NOTE = ("CPU study measured (5 seeds, pendulum + point mass): claim not reproduced; converged runs equal across arms, SAC best mean")

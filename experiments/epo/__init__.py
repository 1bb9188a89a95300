"""Experiment folder of `epo`: EPO: Entropy-regularized Policy Optimization for LLM Agents Reinforcement Learning.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/rl/epo.py'
NOTE = ("penalty/schedule parity with the official actor; the official corridor term has no gradient (EPO == + entropy bonus). Text corridor (2 seeds): all arms reach greedy success 1.0; our differentiable corridor never/late binds, so GRPO+EPO == GRPO+entropy (entropy variance 0.045 vs 0.046, GRPO 0.111); success claim not reproduced")

"""Experiment folder of `epo`: EPO: Entropy-regularized Policy Optimization for LLM Agents Reinforcement Learning.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/rl/epo.py'
NOTE = ("multi-turn sparse-reward text corridor (JAX); GRPO vs + entropy bonus vs + EPO corridor; official penalty/schedule parity; the official corridor term has no gradient (EPO == entropy bonus), our 'distance' variant does")

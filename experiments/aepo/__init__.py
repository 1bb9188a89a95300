"""Experiment folder of `aepo`: Arbitrary Entropy Policy Optimization: Entropy Is Controllable in Reinforcement Fine-tuning.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = "implemented"
ALGOS = "algos/rl/aepo.py"
NOTE = ("GRPO core + AEPO (update batch and loss equal the official "
        "trainer's, parity test); CPU study (2 seeds, 4-layer byte LM SFT'd on 30k "
        "addition problems, pass@1 0.75, 100 RL steps): GRPO entropy decays (0.075 -> "
        "0.03 nats) - reproduced; entropy tracking not reproduced: below-start target "
        "0.05 overshoots to 0.03, targets 0.2/0.5/1.0 give bit-identical runs whose "
        "entropy still falls (0.053/0.029; T_high 2.0 too), since only correct samples "
        "of mixed groups are reinforced; performance vs target: 2 distinct points, "
        "not testable; Qwen2.5-Math-7B config not run")

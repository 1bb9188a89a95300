"""Experiment folder of `aepo`: Arbitrary Entropy Policy Optimization: Entropy Is Controllable in Reinforcement Fine-tuning.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = "implemented"
ALGOS = "algos/rl/aepo.py"
NOTE = ("GRPO core + AEPO (update batch and loss equal the official "
        "trainer's, parity test); CPU study (tiny byte LM, 300-step SFT on "
        "arithmetic/tiny, 40 RL steps, 2 seeds): GRPO entropy decays (1.83 -> "
        "1.20 nats); AEPO entropy ordered by target (1.40 / 2.05 / 2.21 for H "
        "0.8 / 1.5 / 2.5) but not held at it (last-half deviation 14-102%); "
        "SFT model solves ~1% so performance vs target untestable; "
        "Qwen2.5-Math-7B config not run")

"""Experiment folder of `evol_rl`: Evolving Language Models without Labels: Majority Drives Selection, Novelty Promotes Variation.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/rl/evol_rl.py'
NOTE = ("reward parity with the official reward manager (1e-6); CPU study (3 seeds, 4-layer byte LM SFT'd on 30k addition problems, pass@1 0.79): "
        "reproduced - TTRL collapses entropy (0.161 -> 0.049) and diversity (distinct 0.46 -> 0.26), EVOL-RL keeps them (0.150 / 0.43); "
        "pass@8 EVOL-RL 0.960 vs TTRL 0.902 (3/3 seeds) but both below the SFT model (0.995); pass@1 equal (0.76 vs 0.77); "
        "OOD (5 digits) untestable: no model solves it")

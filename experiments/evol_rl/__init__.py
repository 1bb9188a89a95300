"""Experiment folder of `evol_rl`: Evolving Language Models without Labels: Majority Drives Selection, Novelty Promotes Variation.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/rl/evol_rl.py'
NOTE = ("reward parity with the official reward manager (1e-6); CPU study (2 seeds, tiny byte LM, SFT pass@1 ~1%): not reproduced - TTRL collapses (entropy 1.16->0.65, majority share 0.13->0.80) but EVOL-RL collapses as fast (entropy 1.24->0.53; held-out distinct 0.63 vs TTRL 0.94); pass@8 equal (0.042), OOD pass@8 0 for both: the SFT model is too weak for a right majority")

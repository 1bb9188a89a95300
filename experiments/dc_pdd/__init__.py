"""Experiment folder of `dc_pdd`: Pretraining Data Detection for Large Language Models: A Divergence-based Calibration Method.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/analysis/dc_pdd.py'
NOTE = ("scores equal the official cal_met (parity test: DC-PDD, Min-20%, PPL, zlib); small LM trained on 128 stdlib rows, non-members the next 128 rows, 2 seeds: with a 2,048-token BPE DC-PDD beats the perplexity attack and zlib (AUROC 0.944 vs 0.861 / 0.662 at 2 epochs; common-words non-members 0.927 vs 0.694) but not Min-20% Prob (0.997); byte tokens: all scores near chance at 10 epochs; non-members from other files inflate every score; c4_gpt2 config not run")

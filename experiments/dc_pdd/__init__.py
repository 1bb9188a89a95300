"""Experiment folder of `dc_pdd`: Pretraining Data Detection for Large Language Models: A Divergence-based Calibration Method.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/analysis/dc_pdd.py'
NOTE = ("scores equal the official cal_met (parity test: DC-PDD, Min-20%, PPL, zlib); small LM memorising 128 stdlib rows, 2 seeds: with a 2,048-token BPE DC-PDD beats the perplexity attack and zlib (AUROC 0.971 vs 0.929 / 0.910 at 2 epochs; common-words non-members 0.923 vs 0.781) but not Min-20% Prob (0.997); with byte tokens DC-PDD is the weakest score (0.650 vs 0.686-0.740 at 10 epochs); c4_gpt2 config not run")

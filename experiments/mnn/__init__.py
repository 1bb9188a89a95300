"""Experiment folder of `mnn`: Large Language Model Evaluation via Matrix Nuclear-Norm.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/analysis/matrix_nuclear_norm.py'
NOTE = ("MNN and Matrix Entropy equal the official MNN.py / cal_entropy (parity test); metric-only timing at T=2048, idle CPU: MNN 7x (d=256) to 102x (d=4096) faster than Matrix Entropy; byte LMs d=32/64/128 on stdlib (2 seeds): MNN/T rises as held-out loss falls (Spearman -0.93 within each size), opposite to the paper's 'lower is better'; MNN/T sits at 97-98% of its width ceiling sqrt(min(T,d)/T); Kendall tau with Matrix Entropy +0.26; Qwen2.5 checkpoint analysis (qwen25) not run")

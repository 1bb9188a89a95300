"""Experiment folder of `repri`: Few-Shot Segmentation Without Meta-Learning: A Good Transductive Inference Is All You Need?

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/segmentation/repri.py'
NOTE = ("inference equals the official classifier.py (parity test, 1e-4); "
        "segshapes CPU study, 4 folds x 2 seeds: Oracle-RePRI >> RePRI in "
        "every cell (+16.7 / +12.3 mIoU at 1 / 5 shots); RePRI > prototype "
        "weakly (13/16 cells, +2.0 / +1.4); gain does not grow with shots")

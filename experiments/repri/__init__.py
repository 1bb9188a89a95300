"""Experiment folder of `repri`: Few-Shot Segmentation Without Meta-Learning: A Good Transductive Inference Is All You Need?

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/segmentation/repri.py'
NOTE = ("inference equals the official classifier.py on CPU torch (parity "
        "test); CPU study pending")

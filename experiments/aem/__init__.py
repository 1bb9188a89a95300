"""Experiment folder of `aem`: AEM: Attention Entropy Maximization for Multiple Instance Learning based Whole Slide Image Classification.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/mil/aem.py'
NOTE = "CPU study pending"

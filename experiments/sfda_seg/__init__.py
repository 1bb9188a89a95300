"""Experiment folder of `sfda_seg`: Source-Free Domain Adaptation for Image Segmentation.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/segmentation/sfda.py'
NOTE = ("in progress")

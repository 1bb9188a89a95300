"""Experiment folder of `sfda_seg`: Source-Free Domain Adaptation for Image Segmentation.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/segmentation/sfda.py'
NOTE = ("segshapes/domains CPU study (3 seeds, U-Net 8/16/32, 150 adaptation steps), 3-D Dice fg: no adaptation 29.1, entropy 38.5, SFDA (tags) 39.0, SFDA without tags 32.6, target-supervised 48.5: about half the gap closed (not most), SFDA level with entropy alone (seed spread 7-12 points), ahead of the AdaEnt-style arm (24.0, frozen source model as the prior, every seed); loss equals the official EntKLProp (parity test); prostate/spine configs not run")

"""Experiment folder of `random_teachers`: Random Teachers are Good Teachers.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/distillation/random_teachers.py'
NOTE = ("shapes32 CPU study (6-layer ResNet + DINO head, 2 seeds, ridge "
        "probe): student above its random teacher on every seed but not "
        "far (20.1 vs 18.7% at 470 and at 1380 steps); on noise inputs at "
        "or below it (17.6 / 18.4%); init near the teacher does not help "
        "(independent init 21.3 / 21.7%); digits cannot show it (pixel "
        "probe 93.6%)")

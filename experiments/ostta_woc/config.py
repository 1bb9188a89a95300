"""Open-set TTA by confidence-drop selection vs Tent (wisdom of crowds).

Paper: Towards Open-Set Test-Time Adaptation Utilizing the Wisdom of Crowds
in Entropy Minimization, Lee et al., ICCV 2023, arXiv:2308.06879 (no
official code found; see algos/tta/ostta_woc.py).

Variants (`--config=experiments/ostta_woc/config.py:<variant>`):
  digits_c  (default) CPU: the source small CNN is trained on digits 0-5
            only (`data.classes`); every corrupted stream holds all ten
            digits, so 6-9 are unknowns under the same corruption (our
            substitute for the paper's CIFAR-10-C + SVHN-C setting). The 15
            corruptions stream `adapt.rounds` times without reset
            (long-term); the error is over known-class samples.
  shapes32_c  CPU: the same on the procedural shapes32 stand-in
            (tta_common.shapes32_c): source 6-layer ResNet on 3,000 shapes32/c10
            images, shapes32_corrupted severity-5 streams of 1,000 images
            per corruption at batch 50 (300 steps per pass).
            3 rounds instead of 10.

Example:
  regjax run ostta_woc --config=experiments/ostta_woc/config.py:digits_c \
      --seeds=0,1,2
"""

from experiments import tta_common

VARIANTS = ("digits_c", "shapes32_c")


def get_config(variant: str = "digits_c"):
  if variant not in VARIANTS:
    raise ValueError(f"unknown ostta_woc variant {variant!r}; allowed: "
                     f"{VARIANTS}")
  c = tta_common.digits_c_base("ostta_woc")
  if variant == "shapes32_c":
    tta_common.shapes32_c(c)
  c.data.classes = (0, 1, 2, 3, 4, 5)
  c.adapt.method = "ostta"
  c.adapt.protocols = ("openset",)
  c.adapt.rounds = 10
  if variant == "shapes32_c":
    # 300 steps a round: 3 rounds (900 steps) fit the CPU budget.
    c.adapt.rounds = 3
  c.tta.ostta = dict(diversity_weight=0.0, select=1.0)
  c.study.arms = dict(
      source="adapt.method=source", bn_adapt="adapt.method=bn_adapt",
      tent="adapt.method=tent", ostta="adapt.method=ostta",
      # UniEnt's port always adds the diversity term (alpha 0.5): with it,
      # with and without the selection.
      tent_div="adapt.method=ostta,tta.ostta.select=0.0,"
               "tta.ostta.diversity_weight=0.5",
      ostta_div="adapt.method=ostta,tta.ostta.diversity_weight=0.5")
  c.study.tables = (
      tta_common.corruption_table(
          c, "(b) continual, round 1, known-class error on the open-set "
          "stream (source trained on classes 0-5)", "continual/r1"),
      tta_common.clean_table(c),
      tta_common.rounds_table(
          c, "(d) open-set lifelong: known-class error per round"))
  return c

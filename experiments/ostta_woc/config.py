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

Example:
  regjax run ostta_woc --config=experiments/ostta_woc/config.py:digits_c \
      --seeds=0,1,2
"""

from experiments import tta_common

VARIANTS = ("digits_c",)


def get_config(variant: str = "digits_c"):
  if variant not in VARIANTS:
    raise ValueError(f"unknown ostta_woc variant {variant!r}; allowed: "
                     f"{VARIANTS}")
  c = tta_common.digits_c_base("ostta_woc")
  c.data.classes = (0, 1, 2, 3, 4, 5)
  c.adapt.method = "ostta"
  c.adapt.protocols = ("openset",)
  c.adapt.rounds = 10
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

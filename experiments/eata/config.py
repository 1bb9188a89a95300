"""EATA vs Tent, BN-adapt and source (test-time adaptation).

Paper: Efficient Test-Time Model Adaptation without Forgetting, Niu et al.,
ICML 2022, arXiv:2204.02610; official code mr-eggplant/EATA.

Variants (`--config=experiments/eata/config.py:<variant>`):
  digits_c  (default) CPU: small CNN on digits_corrupted (severity 5), the
            reset and continual protocols, clean error after adaptation and
            samples in backward passes.

Example:
  regjax run eata --config=experiments/eata/config.py:digits_c --seeds=0,1,2
"""

from experiments import tta_common

VARIANTS = ("digits_c",)


def get_config(variant: str = "digits_c"):
  if variant not in VARIANTS:
    raise ValueError(f"unknown eata variant {variant!r}; allowed: {VARIANTS}")
  c = tta_common.digits_c_base("eata")
  c.adapt.method = "eata"
  c.adapt.protocols = ("reset", "continual")
  # CIFAR-10 settings of the UniEnt re-implementation (Adam 1e-3,
  # E0 = 0.4 ln C, d_margin 0.4, fisher_alpha 1; see third_party_configs).
  c.tta.eata.update(e_margin_factor=0.4, d_margin=0.4, fisher_alpha=1.0)
  c.study.arms = dict(
      source="adapt.method=source", bn_adapt="adapt.method=bn_adapt",
      tent="adapt.method=tent",
      eta="adapt.method=eata,tta.eata.fisher_alpha=0.0",
      eata="adapt.method=eata")
  return c

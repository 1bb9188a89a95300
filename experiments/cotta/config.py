"""CoTTA vs Tent, BN-adapt and source on continual and lifelong streams.

Paper: Continual Test-Time Domain Adaptation, Wang et al., CVPR 2022,
arXiv:2203.13591; official code qinenergy/cotta.

Variants (`--config=experiments/cotta/config.py:<variant>`):
  digits_c  (default) CPU: small CNN on digits_corrupted (severity 5), the
            15 corruptions in sequence without reset (continual) and that
            sequence repeated `adapt.rounds` times (lifelong).

Example:
  regjax run cotta --config=experiments/cotta/config.py:digits_c --seeds=0,1,2
"""

from experiments import tta_common

VARIANTS = ("digits_c",)


def get_config(variant: str = "digits_c"):
  if variant not in VARIANTS:
    raise ValueError(f"unknown cotta variant {variant!r}; allowed: "
                     f"{VARIANTS}")
  c = tta_common.digits_c_base("cotta")
  c.adapt.method = "cotta"
  c.adapt.protocols = ("continual", "lifelong")
  c.adapt.rounds = 10
  # cfgs/cifar10/cotta.yaml: Adam 1e-3, MT 0.999, RST 0.01, 32 augmented
  # teacher passes; the gate (AP) is recomputed for our source model as the
  # official recipe says (5% confidence quantile on source data - 0.05).
  c.tta.cotta.update(ema=0.999, restore_prob=0.01, gate=-1.0, num_aug=32)
  c.study.arms = dict(
      source="adapt.method=source", bn_adapt="adapt.method=bn_adapt",
      tent="adapt.method=tent", cotta="adapt.method=cotta")
  return c

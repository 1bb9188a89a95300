"""CoTTA vs Tent, BN-adapt and source on continual and lifelong streams.

Paper: Continual Test-Time Domain Adaptation, Wang et al., CVPR 2022,
arXiv:2203.13591; official code qinenergy/cotta.

Variants (`--config=experiments/cotta/config.py:<variant>`):
  digits_c  (default) CPU: small CNN on digits_corrupted (severity 5), the
            15 corruptions in sequence without reset (continual) and that
            sequence repeated `adapt.rounds` times (lifelong).
  cifar10_c  RobustBench Standard WRN-28-10 (converted weights) on TFDS
            cifar10_corrupted severity 5 (cfgs/cifar10/cotta.yaml: Adam
            1e-3, batch 200, gate 0.92, 32 augmentations).
  imagenet_c  torchvision ResNet-50 on imagenet2012_corrupted severity 5
            (imagenet/cotta.py: SGD 0.01 momentum 0.9 Nesterov, batch 64,
            symmetric cross-entropy, gate 0.1, restore 0.001).
  shapes32_c  CPU: the same on the procedural shapes32 stand-in
            (tta_common.shapes32_c): source 6-layer ResNet on 3,000 shapes32/c10
            images, shapes32_corrupted severity-5 streams of 1,000 images
            per corruption at batch 50 (300 steps per pass).
            3 rounds instead of 10.

Example:
  regjax run cotta --config=experiments/cotta/config.py:digits_c --seeds=0,1,2
"""

from experiments import tta_common

VARIANTS = ("digits_c", "shapes32_c", "cifar10_c", "imagenet_c")


def get_config(variant: str = "digits_c"):
  if variant not in VARIANTS:
    raise ValueError(f"unknown cotta variant {variant!r}; allowed: "
                     f"{VARIANTS}")
  c = tta_common.digits_c_base("cotta")
  if variant == "shapes32_c":
    tta_common.shapes32_c(c)
  elif variant != "digits_c":
    tta_common.full_scale(c, variant)
  c.adapt.method = "cotta"
  c.adapt.protocols = ("continual", "lifelong")
  # The lifelong protocol: the continual sequence repeated 10 times.
  c.adapt.rounds = 10
  if variant == "shapes32_c":
    # 300 steps a round: 3 rounds (900 steps) fit the CPU budget.
    c.adapt.rounds = 3
  # cfgs/cifar10/cotta.yaml: Adam 1e-3, MT 0.999, RST 0.01, 32 augmented
  # teacher passes; the gate (AP) is recomputed for our source model as the
  # official recipe says (gate < 0: 5% confidence quantile on clean source
  # images - 0.05, in CoTTA's init). hflip: the official teacher flip.
  c.tta.cotta = dict(ema=0.999, restore_prob=0.01, gate=-1.0, num_aug=32,
                     loss="ce", hflip=True)
  c.study.arms = dict(
      source="adapt.method=source", bn_adapt="adapt.method=bn_adapt",
      tent="adapt.method=tent", cotta="adapt.method=cotta",
      # The gate always open: every batch's teacher prediction averages 32
      # augmented passes (what the official CIFAR code computes always).
      cotta_always_aug="adapt.method=cotta,tta.cotta.gate=2.0",
      # ...without the official horizontal flip (a mirrored digit is often
      # another digit or none).
      cotta_always_aug_noflip=("adapt.method=cotta,tta.cotta.gate=2.0,"
                               "tta.cotta.hflip=False"))
  c.study.tables = (
      tta_common.corruption_table(c, "(b) continual, round 1",
                                  "continual/r1"),
      tta_common.clean_table(c),
      tta_common.rounds_table(c, "(c) lifelong: mean error per round"))
  if variant == "cifar10_c":
    c.tta.cotta.gate = 0.92
  elif variant == "imagenet_c":
    c.tta.cotta.update(gate=0.1, restore_prob=0.001, loss="symmetric")
    c.adapt.optim.update(name="sgd", learning_rate=0.01, momentum=0.9,
                         nesterov=True)
  return c

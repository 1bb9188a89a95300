"""EATA vs Tent, BN-adapt and source (test-time adaptation).

Paper: Efficient Test-Time Model Adaptation without Forgetting, Niu et al.,
ICML 2022, arXiv:2204.02610; official code mr-eggplant/EATA.

Variants (`--config=experiments/eata/config.py:<variant>`):
  digits_c  (default) CPU: small CNN on digits_corrupted (severity 5), the
            reset and continual protocols, clean error after adaptation and
            samples in backward passes.
  cifar10_c  RobustBench Standard WRN-28-10 (converted weights) on TFDS
            cifar10_corrupted severity 5, Adam 1e-3, batch 200, E0 0.4 ln 10,
            d_margin 0.4, fisher_alpha 1 (CIFAR settings of the UniEnt
            re-implementation); paper column: the Tent README (reset).
  imagenet_c  torchvision ResNet-50 on imagenet2012_corrupted severity 5,
            SGD 2.5e-4 momentum 0.9, batch 64, E0 0.4 ln 1000, d_margin
            0.05, fisher_alpha 2000, Fisher from 2000 clean validation
            images (EATA main.py).
  shapes32_c  CPU: the same on the procedural shapes32 stand-in
            (tta_common.shapes32_c): source 6-layer ResNet on 3,000 shapes32/c10
            images, shapes32_corrupted severity-5 streams of 1,000 images
            per corruption at batch 50 (300 steps per pass).

Example:
  regjax run eata --config=experiments/eata/config.py:digits_c --seeds=0,1,2
  regjax run eata --config=experiments/eata/config.py:cifar10_c \
      --data_dir=/data/tfds \
      --config.adapt.source_checkpoint=weights/cifar10_standard_wrn28_10
"""

from experiments import tta_common

VARIANTS = ("digits_c", "shapes32_c", "cifar10_c", "imagenet_c")

# DequanWang/tent README (commit 0087ada), CIFAR-10-C severity 5,
# WRN-28-10 RobustBench Standard, reset per corruption, mean error (%).
_PAPER_TENT_CIFAR10C = {"source": {"reset/mean/error": 43.5},
                        "bn_adapt": {"reset/mean/error": 20.4},
                        "tent": {"reset/mean/error": 18.6}}


def get_config(variant: str = "digits_c"):
  if variant not in VARIANTS:
    raise ValueError(f"unknown eata variant {variant!r}; allowed: {VARIANTS}")
  c = tta_common.digits_c_base("eata")
  if variant == "shapes32_c":
    tta_common.shapes32_c(c)
  elif variant != "digits_c":
    tta_common.full_scale(c, variant)
  c.adapt.method = "eata"
  # Tent's per-corruption-reset table and the continual sequence.
  c.adapt.protocols = ("reset", "continual")
  # CIFAR-10 settings of the UniEnt re-implementation (Adam 1e-3,
  # E0 = 0.4 ln C, d_margin 0.4, fisher_alpha 1; see third_party_configs).
  # capacity_buckets=(): the official full-batch backward (EATA's update);
  # fractions of the batch opt into the re-forwarded sub-batch
  # (algos/tta/eata.py; arm eata_compact).
  c.tta.eata = dict(e_margin_factor=0.4, d_margin=0.4, fisher_alpha=1.0,
                    reweight=1.0, ma_momentum=0.9,
                    capacity_buckets=())
  c.study.arms = dict(
      source="adapt.method=source", bn_adapt="adapt.method=bn_adapt",
      tent="adapt.method=tent",
      eta="adapt.method=eata,tta.eata.fisher_alpha=0.0",
      eata="adapt.method=eata",
      # Opt-in compacted backward (not EATA's update: sub-batch BatchNorm
      # statistics): re-forward a half-batch when at most half is selected.
      eata_compact="adapt.method=eata,tta.eata.capacity_buckets=0.5",
      # The official ImageNet anchor strength: does a strong Fisher anchor
      # buy the clean-error claim that alpha = 1 does not?
      eata_alpha2000="adapt.method=eata,tta.eata.fisher_alpha=2000.0")
  c.study.tables = (
      tta_common.corruption_table(c, "(a) reset before each corruption",
                                  "reset"),
      tta_common.corruption_table(c, "(b) continual, round 1",
                                  "continual/r1"),
      tta_common.clean_table(c))
  if variant == "cifar10_c":
    c.study.metrics = ("reset/mean/error",)
    c.study.metric_labels = {"reset/mean/error": "reset, mean error (%)"}
    c.study.formats = {"reset/mean/error": ".1f"}
    c.study.paper = _PAPER_TENT_CIFAR10C
    c.study.paper_source = ("DequanWang/tent README @0087ada, CIFAR-10-C "
                            "sev. 5, WRN-28-10, reset per corruption")
  elif variant == "imagenet_c":
    c.tta.eata.update(e_margin_factor=0.4, d_margin=0.05, fisher_alpha=2000.0)
  return c

"""The digits_c / shapes32_c recipes and table layouts shared by the TTA
experiments.

Not an experiment itself (no `config.py`): `experiments/eata`, `cotta` and
`ostta_woc` build on it so their source models are trained alike and their
tables look alike. Each adds its own method's section (`config.tta.<id>`).
"""

from __future__ import annotations

from common.protocols import tta
from experiments import shapes32_recipe

BASELINES = ("source", "bn_adapt", "tent")
SHORT = {"gaussian_noise": "gauss", "shot_noise": "shot",
         "impulse_noise": "impul", "defocus_blur": "defoc",
         "frosted_glass_blur": "glass", "motion_blur": "motn",
         "zoom_blur": "zoom", "snow": "snow", "frost": "frost", "fog": "fog",
         "brightness": "brit", "contrast": "contr", "elastic": "elast",
         "pixelate": "pixel", "jpeg_compression": "jpeg"}


def digits_c_base(experiment: str):
  """Base config: source small CNN on clean digits_corrupted, baselines.

  The source model (small CNN, widths 8/16/32, sized for two CPU cores) is
  trained with the supervised protocol (SGD 0.1 Nesterov, cosine, 20
  epochs, random crops) on `digits_corrupted/clean` train (1437 images,
  32x32) and adapted on the 360-image severity-5 test streams, batch 60 (6
  batches per corruption).
  """
  c = tta.base_config()
  c.experiment = experiment
  c.data.update(name="digits_corrupted/clean", crop_padding=4,
                flip=False, mean=(0.5,), std=(0.5,))
  c.model.name = "small_cnn"
  c.model.kwargs = dict(widths=(8, 16, 32))
  c.method.name = "cross_entropy"
  c.optim.update(name="sgd", momentum=0.9, nesterov=True, weight_decay=5e-4)
  c.schedule.update(name="cosine", learning_rate=0.1)
  c.train.update(batch_size=64, num_epochs=20, eval_batch_size=360,
                 log_every_steps=50, eval_every_epochs=0,
                 checkpoint_every_steps=10000, tensorboard=False)
  c.adapt.update(stream="digits_corrupted", severity=5, batch_size=60)
  for name in BASELINES:
    c.tta[name] = {}
  c.study.seeds = (0, 1, 2)
  c.smoke.update(enabled=True, steps=3)
  return c


def shapes32_c(c):
  """Switches a `digits_c_base` config to the harder `shapes32` stand-in.

  Source model: the calibrated recipe of experiments/shapes32_recipe.py
  (6-layer ResNet, SGD 0.1 Nesterov, cosine, 30 epochs, flips, no crops,
  first 3,000 `shapes32/c10` training images; the PS-KD `shapes32`
  calibration), trained per seed; adapted on `shapes32_corrupted`
  severity-5 streams of 1,000 images per corruption at batch 50 (20 steps
  per corruption, 300 per pass over the 15 corruptions, against 6 and 90
  on digits_c). Clean error is measured on the first 2,000 clean test
  images.
  """
  shapes32_recipe.apply(c)
  c.adapt.update(stream="shapes32_corrupted", split="test[:1000]",
                 batch_size=50, clean_name="shapes32/c10",
                 clean_split="test[:2000]", init_split="train[:2000]")
  # The digits smoke path covers the code; building shapes32/c10 takes
  # about a minute (tests/common/data/test_shapes32.py covers the data).
  c.smoke.enabled = False
  return c


def arm_rows(arms) -> tuple[str, ...]:
  """Baselines first, then the paper's arms by name."""
  return tuple(a for a in BASELINES if a in arms) + tuple(
      sorted(a for a in arms if a not in BASELINES))


def corruption_table(c, title: str, prefix: str):
  """Arms x corruptions (+ the mean over them) of `<prefix>/<c>/error`."""
  a = c.adapt
  cols = tuple((SHORT.get(x, x), x) for x in a.corruptions) + (
      ("mean", "mean"),)
  return dict(
      title=f"{title} ({a.stream} severity {a.severity}, batch "
            f"{a.batch_size}; error %)",
      rows=arm_rows(c.study.arms), cols=cols, metric=prefix + "/{col}/error",
      fmt=".1f", std_cols=("mean",), drop_empty=True)


def clean_table(c, title: str = "(e) after round 1: clean error and "
                "backward passes"):
  """Clean error before / after adaptation, backward-pass fractions."""
  return dict(
      title=title, rows=arm_rows(c.study.arms), metric="{col}", fmt=".1f",
      cols=(("clean error before", "clean/before"),
            ("clean error after round 1", "clean/after_r1"),
            ("clean error after last round", "clean/after_last"),
            ("samples in backward (% of stream)", "backward/samples"),
            ("rows back-propagated (% of stream)", "backward/rows")),
      drop_empty=True)


def rounds_table(c, title: str):
  """Mean error of each round of the lifelong stream."""
  return dict(title=title, rows=arm_rows(c.study.arms), fmt=".1f",
              cols=tuple((f"r{k}", k) for k in range(1, c.adapt.rounds + 1)),
              metric="continual/r{col}/mean/error", drop_empty=True)


def full_scale(c, variant: str):
  """Full-scale data and converted source weights (no source training).

  `cifar10_c`: RobustBench `Standard` WRN-28-10 on TFDS
  `cifar10_corrupted/<name>_5` (10,000 images each), inputs in [0, 1]
  without normalisation; clean data `cifar10`. `imagenet_c`: torchvision
  ResNet-50 (IMAGENET1K_V1) on `imagenet2012_corrupted/<name>_5` (50,000
  each), ImageNet mean/std; clean data `imagenet2012` validation at 224.
  Weights: `--config.adapt.source_checkpoint=<converted dir>` (see
  third_party_configs/tta_weights/README.md); data under --data_dir.
  """
  c.smoke.enabled = False
  c.study.seeds = (0,)
  c.adapt.train_source = False
  if variant == "cifar10_c":
    c.data.update(name="cifar10", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
                  crop_padding=0, classes=())
    c.model.name = "wide_resnet28_10"
    c.model.kwargs = {}
    c.adapt.update(stream="cifar10_corrupted", clean_name="cifar10",
                   clean_split="test", init_split="test", init_size=2000,
                   batch_size=200)
    # cfgs/tent.yaml, cfgs/cifar10/cotta.yaml: Adam 1e-3, batch 200.
    c.adapt.optim.update(name="adamw", learning_rate=1e-3)
  elif variant == "imagenet_c":
    c.data.update(name="imagenet2012", mean=(0.485, 0.456, 0.406),
                  std=(0.229, 0.224, 0.225), crop_padding=0, classes=(),
                  image_size=224)
    c.model.name = "resnet50"
    c.model.kwargs = {}
    c.adapt.update(stream="imagenet2012_corrupted", clean_name="imagenet2012",
                   clean_split="validation", init_split="validation",
                   init_size=2000, batch_size=64,
                   cache_streams=False, chunk_batches=50)
    # EATA main.py: SGD 2.5e-4 (lr 0.00025), momentum 0.9, batch 64.
    c.adapt.optim.update(name="sgd", learning_rate=2.5e-4, momentum=0.9)
  else:
    raise ValueError(f"unknown full-scale variant {variant!r}")
  return c

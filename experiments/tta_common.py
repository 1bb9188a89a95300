"""The digits_c source-model recipe shared by the TTA experiments.

Not an experiment itself (no `config.py`): `experiments/eata`, `cotta` and
`ostta_woc` build on it so their source models are trained alike.
"""

from __future__ import annotations

from common import adapt_study
from common import config as config_lib


def digits_c_base(experiment: str):
  """Base config: source small CNN on clean digits_corrupted, TTA sections.

  The source model (small CNN, widths 8/16/32, sized for two CPU cores) is
  trained with the shared harness (SGD 0.1 Nesterov, cosine, 20 epochs,
  random crops) on `digits_corrupted/clean` train (1437 images, 32x32) and
  adapted on the 360-image severity-5 test streams, batch 60 (6 batches per
  corruption).
  """
  c = config_lib.base_config()
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
  adapt_study.add_tta_sections(c)
  c.adapt.update(stream="digits_corrupted", severity=5, batch_size=60)
  c.study.seeds = (0, 1, 2)
  c.smoke.update(enabled=True, steps=3)
  return c


# CIFAR-10-C order; TFDS `cifar10_corrupted` / `imagenet2012_corrupted`
# config names (`frosted_glass_blur`, `elastic`).
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
                   clean_split="test", fisher_split="test", fisher_size=2000,
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
                   clean_split="validation", fisher_split="validation",
                   fisher_size=2000, batch_size=64,
                   cache_streams=False, chunk_batches=50)
    # EATA main.py: SGD 2.5e-4 (lr 0.00025), momentum 0.9, batch 64.
    c.adapt.optim.update(name="sgd", learning_rate=2.5e-4, momentum=0.9)
  else:
    raise ValueError(f"unknown full-scale variant {variant!r}")
  return c

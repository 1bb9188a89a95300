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

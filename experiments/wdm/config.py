"""WDM (WPC, gradient penalty) vs CPC (InfoNCE) as mutual information grows.

Paper: Ozair et al., "Wasserstein Dependency Measure for Representation
Learning", NeurIPS 2019, arXiv:1903.11780 (no official code).

Task ("multi-digits"): x = n sklearn digits (8x8) side by side; y = the
*same classes* drawn as other images of those classes, each view with its
own pixel noise. The information shared by the views is the n class labels,
I(x; y) = n log 10 nats, which passes CPC's log(batch) ceiling at n = 2
(batch 64: log 64 = 4.16 nats). A shared MLP encoder is trained with each
objective; a linear probe (logistic regression on the frozen 64-d codes)
then predicts all n digit classes. Metric: mean per-position probe
accuracy (%), and the accuracy of getting all n right.

Variants:
  digits  (default) CPU, minutes: n in {1, 2, 3, 4}, 1000 steps, batch 64.

Example:
  regjax run wdm --seeds=0,1,2
"""

from common import config as config_lib

VARIANTS = ("digits",)


def get_config(variant: str = "digits"):
  if variant not in VARIANTS:
    raise ValueError(f"unknown wdm variant {variant!r}; allowed: {VARIANTS}")
  c = config_lib.base_config()
  c.experiment = "wdm"
  c.runner = "experiments.wdm.run"
  c.data.name = "multi_digits"
  c.method.name = "wdm"
  # gp_weight 10 as in WGAN-GP; 0 is CPC.
  c.method.wdm = dict(gp_weight=10.0, one_sided=False, spectral_norm=False)
  c.wdm = dict(num_digits=(1, 2, 3, 4), view_noise=0.3, hidden=(256, 256),
               out_dim=64, probe_train=2000, probe_test=1000,
               train_pool=1200)    # first 1200 sklearn digits train, rest test
  c.optim.update(name="adamw", weight_decay=0.0)
  c.schedule.update(name="constant", learning_rate=1e-3)
  c.train.update(batch_size=64, steps=1000, log_every_steps=250,
                 tensorboard=False)
  c.study.arms = {"CPC": "method.wdm.gp_weight=0.0",
                  "WPC (GP)": "method.wdm.gp_weight=10.0"}
  c.study.seeds = (0, 1, 2)
  c.study.metrics = ("probe_acc", "probe_all_acc")
  c.smoke.enabled = True
  return c

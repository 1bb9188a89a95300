"""Weight compander (WC) on top of standard regularisation vs without it.

Paper: Weight Compander: A Simple Weight Reparameterization for
Regularization, Cakaj, Mehnert, Yang, IJCNN 2023, arXiv:2306.16993; no
official code. The compander's exact form is NOT verified against the paper
(see algos/regularizers/weight_compander.py); `method.weight_compander.form`
switches between the two forms implemented.

Every arm trains with the same standard regularisation (SGD weight decay
5e-4, random-crop augmentation; the small CNN has no dropout); the WC arms
add the compander on every conv/dense kernel, with fixed (`WC`) or
learnable (`WC-learned`) bound and gain.

Variants (`--config=experiments/weight_compander/config.py:<variant>`):
  digits_small  (default) CPU, minutes: small CNN (16/32/64) on the first
            25% of the embedded 8x8 digits training split (359 images),
            150 epochs: a regime with a generalisation gap.
  shapes32  CPU, ~3 min/run: the 6-layer ResNet recipe on shapes32/c10
            (experiments/shapes32_recipe.py), 30 epochs.
  cifar100  full scale: PreAct-ResNet-18 on CIFAR-100, 200 epochs, SGD 0.1,
            wd 5e-4, crop + flip (third_party_configs/weight_compander/).

Example:
  regjax run weight_compander --seeds=0,1,2,3,4
"""

from common.protocols import supervised
from experiments import shapes32_recipe

VARIANTS = ("digits_small", "shapes32", "cifar100")


def get_config(variant: str = "digits_small"):
  c = supervised.base_config()
  c.experiment = "weight_compander"
  c.method.name = "weight_compander"
  c.method.weight_compander = dict(
      form="tanh", include=r"kernel$", exclude="", bound_units="fan_in",
      learnable=False, bound=3.0, gain=1.5, mix=1.0, label_smoothing=0.0)
  c.eval.name = "classification_wc"
  c.optim.update(name="sgd", momentum=0.9, nesterov=True, weight_decay=5e-4,
                 weight_decay_mask="kernels")
  c.schedule.update(name="cosine", learning_rate=0.05)
  c.study.arms = {
      "baseline": "method.name=cross_entropy",
      "WC": "",
      "WC-learned": "method.weight_compander.learnable=True",
  }
  c.study.metrics = ("error", "nll", "w_max_abs", "w_near_zero")
  c.study.metric_labels = dict(error="test error (%)", nll="NLL",
                               w_max_abs="max |w| sqrt(fan_in)",
                               w_near_zero="frac |w| sqrt(fan_in) < 0.1")
  c.study.artifacts = "common.study.paired:artifacts"
  c.study.paper_source = ""

  if variant == "digits_small":
    c.data.update(name="digits", train_split="train[:25%]", crop_padding=1,
                  flip=False, mean=(0.5,), std=(0.5,))
    c.model.name = "small_cnn"
    c.model.kwargs = dict(widths=(16, 32, 64))
    c.train.update(batch_size=64, num_epochs=150, eval_batch_size=360,
                   log_every_steps=50, eval_every_epochs=50,
                   checkpoint_every_steps=1000)
    c.study.seeds = (0, 1, 2, 3, 4)
    c.smoke.enabled = True
    c.smoke.steps = 2
  elif variant == "shapes32":
    shapes32_recipe.apply(c)
    c.schedule.update(name="cosine", learning_rate=0.1)
    c.train.update(log_every_steps=100, eval_every_epochs=0,
                   checkpoint_every_steps=5000)
    c.study.seeds = (0, 1, 2)
    c.smoke.enabled = False
  elif variant == "cifar100":
    c.data.update(name="cifar100", crop_padding=4, flip=True,
                  mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762))
    c.model.name = "preact_resnet18"
    c.model.kwargs = {}
    c.optim.weight_decay_mask = "all"
    c.schedule.update(name="piecewise", learning_rate=0.1,
                      boundaries_epochs=(60.0, 120.0, 160.0),
                      decay_factor=0.2)
    c.train.update(batch_size=128, num_epochs=200, eval_batch_size=1000,
                   log_every_steps=100, eval_every_epochs=5,
                   checkpoint_every_steps=5000)
    c.study.seeds = (0,)
    c.smoke.enabled = False
  else:
    raise ValueError(f"unknown weight_compander variant {variant!r}; "
                     f"allowed: {VARIANTS}")
  return c

"""Policy-gradient noise-mask pretraining, then fine-tuning without masks.

Paper: "Policy Gradient-Driven Noise Mask", Yavuz & Yang, 2024,
arXiv:2406.14568; official code ogrenenmakine/Policy-Gradient-Driven-Noise-
Mask (`_policy_gradient/` then `_normal/ --finetune`).

The `finetune` protocol runs the paper's two phases: `pretrain.overrides`
train the "heated" model with `pg_noise_mask` (Beta-policy masks, SGD 0.1,
policy lr 0.01), then this config fine-tunes it with plain cross-entropy and
no masks at lr / 100 with a linear warm-up (official `_normal` finetune
recipe: lr 0.001 after 0.1, warm-up 7 of 10 epochs). Every arm fine-tunes
the same way; they differ only in pretraining:

  conventional    `masks=none`: plain cross-entropy (one forward), the
                  baseline the paper compares with, same steps;
  PG noise mask   the official method (classifier gradient weighted by the
                  masks' log-density, policy by REINFORCE with reward -CE);
  PG, detached    the same masks, the classifier trained on plain CE of the
                  masked images (`detach_weight`): is it the masks or the
                  ~log(grid^2) gradient scale?

Seen / unseen classes: the model trains and fine-tunes on `data.classes`;
evaluator `seen_unseen` (experiments/pg_noise_mask/evaluate.py) reports the
seen-class test accuracy and a ridge probe of the frozen features on the
held-out classes `eval.unseen_classes` (the unseen-concept transfer).

Variants (`--config=experiments/pg_noise_mask/config.py:<variant>`):
  shapes32    (default) CPU: the 6-layer ResNet of experiments/
              shapes32_recipe.py on shapes 0-6 of the first 3,000
              shapes32/c10 training images (~2,100), 16 + 4 epochs; unseen
              shapes 7-9 (ring, crescent, half disc) probed from 1,000
              other training images, scored on the test split.
  digits_mlp  CPU, seconds: MLP (256, 256) on digits 0-6, unseen 7-9,
              flatten policy (saturated: every arm ~99%). Its smoke run is
              off for the test budget (the two-stage smoke costs ~17 s of
              CPU); tests/test_full_scale_compile.py lowers it instead.
  radimagenet full scale: ResNet-50, 224 px, the official settings
              (third_party_configs/pg_noise_mask/); needs RadImageNet as a
              TFDS image folder under data_dir.

Example:
  regjax run pg_noise_mask --seeds=0,1,2
"""

import ml_collections as mlc

from algos.regularizers import pg_noise_mask
from common.protocols import finetune
from experiments import shapes32_recipe

VARIANTS = ("shapes32", "digits_mlp", "radimagenet")

# The arms set the pretraining method's section (the fine-tuning method,
# cross_entropy, does not read it; the pretraining run inherits it).
_ARMS = {
    "conventional": "method.pg_noise_mask.masks=none",
    "PG noise mask": "",
    "PG, detached": "method.pg_noise_mask.detach_weight=True",
}
_METRICS = ("finetuned/accuracy", "finetuned/unseen_probe_acc",
            "pretrained/accuracy", "pretrained/unseen_probe_acc",
            "finetuned/nll")
_LABELS = {
    "finetuned/accuracy": "fine-tuned acc, seen (%)",
    "finetuned/unseen_probe_acc": "probe acc, unseen (%)",
    "pretrained/accuracy": "heated acc, seen (%)",
    "pretrained/unseen_probe_acc": "heated probe, unseen (%)",
    "finetuned/nll": "fine-tuned NLL, seen",
}


def _pretrain(epochs: int, lr: float) -> tuple[str, ...]:
  """The shared pretraining overrides (the arm appends its own)."""
  return ("method.name=pg_noise_mask", f"schedule.learning_rate={lr}",
          "schedule.name=cosine", "schedule.warmup_epochs=0.0",
          f"train.num_epochs={epochs}")


def get_config(variant: str = "shapes32"):
  if variant not in VARIANTS:
    raise ValueError(f"unknown pg_noise_mask variant {variant!r}; "
                     f"allowed: {VARIANTS}")
  c = finetune.base_config()
  c.experiment = "pg_noise_mask"
  c.method.name = "cross_entropy"
  c.method.cross_entropy = mlc.ConfigDict(dict(label_smoothing=0.0))
  c.method.pg_noise_mask = mlc.ConfigDict(dict(pg_noise_mask.DEFAULTS))
  # Official get_optim: SGD momentum 0.9, wd 1e-4 for both networks.
  c.optim.update(name="sgd", momentum=0.9, weight_decay=1e-4)
  c.eval = mlc.ConfigDict(dict(
      name="seen_unseen", unseen_classes=(7, 8, 9),
      probe_train_split="train", probe_test_split="test",
      probe_train_examples=0, probe_ridge=1e-3))
  c.study.arms = dict(_ARMS)
  c.study.metrics = _METRICS
  c.study.metric_labels = dict(_LABELS)
  c.study.formats = {m: ".2f" for m in _METRICS}
  c.study.artifacts = "common.study.paired:artifacts"
  c.study.name = variant
  c.study.paper_source = (
      "paper tables not readable offline (arXiv 2406.14568 body not "
      "reachable; the official README gives no numbers)")
  c.data.classes = (0, 1, 2, 3, 4, 5, 6)
  c.train.update(log_every_steps=50, eval_every_epochs=0,
                 checkpoint_every_steps=10000, tensorboard=False)

  if variant == "shapes32":
    shapes32_recipe.apply(c)
    c.data.flip = True
    c.method.pg_noise_mask.update(grid=16, kernel=5, sigma=1.0, width=64)
    c.eval.update(probe_train_split="train[3000:4000]",
                  probe_test_split="test")
    c.pretrain.overrides = _pretrain(16, 0.1)
    # Fine-tune: lr / 100 after a linear warm-up over 70% of it.
    c.schedule.update(name="constant", learning_rate=0.001,
                      warmup_epochs=2.8)
    c.train.update(num_epochs=4, eval_batch_size=1000)
    c.study.seeds = (0, 1, 2)
    c.smoke.enabled = False
  elif variant == "digits_mlp":
    c.data.update(name="digits", train_split="train", crop_padding=1,
                  flip=False, mean=(0.5,), std=(0.5,))
    c.model.name = "mlp"
    c.model.kwargs = dict(hidden_sizes=(256, 256))
    c.method.pg_noise_mask.update(grid=4, kernel=3, sigma=1.0, width=64,
                                  backbone="flatten")
    c.eval.update(probe_train_split="train[:700]", probe_test_split="test")
    c.pretrain.overrides = _pretrain(20, 0.05)
    c.schedule.update(name="constant", learning_rate=0.0005,
                      warmup_epochs=3.5)
    c.train.update(batch_size=64, num_epochs=5, eval_batch_size=360)
    c.study.seeds = (0, 1, 2)
    c.smoke.update(enabled=False, steps=2)
  else:   # radimagenet: third_party_configs/pg_noise_mask/README.md
    c.data.update(name="radimagenet", train_split="train",
                  eval_split="test", image_size=224, flip=True,
                  mean=(0.3162,) * 3, std=(0.3213,) * 3)
    # 165 classes; the unseen-concept split is a choice of ours (the paper's
    # unseen tasks are other datasets): classes 150-164 held out.
    c.data.classes = tuple(range(150))
    c.eval.update(unseen_classes=tuple(range(150, 165)),
                  probe_train_split="train", probe_test_split="test",
                  probe_train_examples=20000)
    c.model.name = "resnet50"
    c.model.kwargs = {}
    c.method.pg_noise_mask.update(grid=64, kernel=13, sigma=6.0, width=512)
    c.pretrain.overrides = (
        "method.name=pg_noise_mask", "schedule.name=piecewise",
        "schedule.learning_rate=0.1", "schedule.warmup_epochs=0.0",
        "schedule.boundaries_epochs=(30.0, 60.0)",
        "schedule.decay_factor=0.1", "train.batch_size=256",
        "train.num_epochs=90")
    c.schedule.update(name="constant", learning_rate=0.001,
                      warmup_epochs=7.0)
    c.train.update(batch_size=256, num_epochs=10, eval_batch_size=1000)
    c.study.seeds = (0,)
    c.smoke.enabled = False
  return c

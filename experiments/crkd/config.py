"""CRKD vs its UNO base: novel class discovery with a frozen known-class
teacher.

Paper: Class-relation Knowledge Distillation for Novel Class Discovery,
Gu, Zhang, Xu, He, ICCV 2023, arXiv:2307.09158; code kleinzcy/Cr-KD-NCD.

Two stages (the `finetune` protocol): `pretrain.overrides` turn this config
into supervised training of `uno_net`'s known-class head on the known
classes only (`uno_supervised`); that run is shared by both arms of a seed.
The discovery run starts from it: UNO (`uno`) or UNO + CRKD (`crkd`, the
pretrained model frozen in `method_state` as the teacher). NCD split: every
known-class training example labelled, every novel-class one unlabelled
(`data.category_discovery`, labelled fraction 1). Evaluator `ncd`
(`algos/discovery/ncd_eval.py`) on the unlabelled training examples, the
official protocol: task-aware novel accuracy (best head and mean over
heads), task-agnostic accuracy of `[known, novel]` logits.

Variants (`--config=experiments/crkd/config.py:<variant>`):
  digits    (default) CPU, minutes: digits 0-4 known, 5-9 novel; small CNN.
  shapes32  CPU: shapes32/c10 (first 3,000 training images), classes 0-4
            known, 5-9 novel; the 6-layer ResNet of the shapes32 recipe.
  cifar100  the official CIFAR100-50 recipe (third_party_configs/crkd):
            PreAct-ResNet-18, 50 known / 50 novel, 4 heads, batch 512, SGD 0.4,
            500 epochs. Needs TFDS cifar100 under --config.data.data_dir.

Examples:
  python -m common run crkd --seeds=0,1,2,3,4
  python -m common run crkd --config=experiments/crkd/config.py:shapes32 \
      --seeds=0,1,2
"""

import ml_collections as mlc

from common.data import category_discovery
from common.protocols import finetune
from experiments import shapes32_recipe

VARIANTS = ("digits", "shapes32", "cifar100")

# The UNO numbers shared by both arms (official scripts/discover_cifar.yaml:
# temperature 0.1, epsilon_sk 0.05, num_iters_sk 3, two large crops).
_UNO = dict(temperature=0.1, epsilon_sk=0.05, num_iters_sk=3, num_views=2)


def _arms_and_tables(c: mlc.ConfigDict) -> None:
  # "CRKD-weak": alpha 0.02, a 5x weaker distillation (the value left
  # commented out in the official scripts/pretrain_cifar.yaml; every
  # discover_*.yaml has 0.1). Its pretraining config differs from the
  # other arms' by this unused number only, so it trains its own, equal,
  # copy of the teacher.
  c.study.arms = {"UNO": "method.name=uno", "CRKD": "method.name=crkd",
                  "CRKD-weak": "method.name=crkd,method.crkd.alpha=0.02"}
  c.study.metrics = ("finetuned/novel_acc", "finetuned/novel_acc_mean_heads",
                     "finetuned/all_acc", "pretrained/error")
  c.study.metric_labels = {
      "finetuned/novel_acc": "novel acc (task-aware, best head)",
      "finetuned/novel_acc_mean_heads": "novel acc (mean of heads)",
      "finetuned/all_acc": "novel acc (task-agnostic)",
      "pretrained/error": "teacher error on known classes (%)"}
  c.study.formats = {k: ".3f" for k in c.study.metrics}
  # Only the UNO base's number is printed in a file we could read offline
  # (DonkeyShot21/UNO README, "UNO v2", CIFAR100-50, task-aware clustering
  # accuracy on the unlabelled training images); CRKD's own tables are in
  # the paper's PDF, which is not stored here.
  c.study.paper = {"UNO": {"finetuned/novel_acc": 0.608}}
  c.study.paper_source = ("DonkeyShot21/UNO README (UNO v2, CIFAR100-50, "
                          "ResNet-18, task-aware novel accuracy); CRKD's "
                          "table not available offline")


def get_config(variant: str = "digits"):
  if variant not in VARIANTS:
    raise ValueError(f"unknown crkd variant {variant!r}; allowed: "
                     f"{VARIANTS}")
  c = finetune.base_config()
  c.experiment = "crkd"
  c.data.category_discovery = category_discovery.default_config()
  c.method.name = "crkd"
  c.method.uno = dict(_UNO)
  c.method.crkd = dict(_UNO, alpha=0.1, kd_temperature=4.0)
  c.method.uno_supervised = dict(temperature=0.1, num_views=2)
  c.model.name = "uno_net"
  c.eval.name = "ncd"
  # Official discovery optimiser: SGD, momentum 0.9, wd 1.5e-4 on every
  # parameter, linear warm-up then cosine (LinearWarmupCosineAnnealingLR).
  c.optim.update(name="sgd", momentum=0.9, nesterov=False,
                 weight_decay=1.5e-4, weight_decay_mask="all")
  c.schedule.update(name="cosine", learning_rate=0.4, warmup_epochs=10.0)
  _arms_and_tables(c)
  # Pretraining on the known classes: the same network and optimiser
  # family; plain labels (no discovery split), classification error.
  known = lambda n: "data.classes=(" + ",".join(map(str, range(n))) + ",)"
  pretrain = ("method.name=uno_supervised", "data.category_discovery.kind=none",
              "eval.name=classification")

  if variant in ("digits", "shapes32"):
    c.data.category_discovery.update(kind="gcd", num_old=5,
                                     labelled_fraction=1.0,
                                     eval_on="unlabelled_train")
    c.study.seeds = (0, 1, 2)
  if variant == "digits":
    c.data.update(name="digits", crop_padding=1, flip=False, mean=(0.5,),
                  std=(0.5,))
    c.model.kwargs = dict(base="small_cnn", widths=(16, 32, 64),
                          num_labeled=5, num_unlabeled=5, num_heads=4,
                          hidden_dim=128, proj_dim=32)
    # Batch 128 (official 512): the learning rate scaled linearly.
    c.schedule.update(learning_rate=0.1, warmup_epochs=1.0)
    c.train.update(batch_size=128, num_epochs=60, eval_batch_size=240,
                   log_every_steps=20, eval_every_epochs=0,
                   checkpoint_every_steps=1000)
    c.pretrain.overrides = pretrain + (
        known(5), "train.batch_size=64", "train.num_epochs=30",
        "train.eval_batch_size=120")
    c.smoke.enabled = True
  elif variant == "shapes32":
    shapes32_recipe.apply(c)
    c.data.category_discovery.update(kind="gcd")
    c.model.kwargs = dict(base=c.model.name, **c.model.kwargs.to_dict(),
                          num_labeled=5, num_unlabeled=5, num_heads=4,
                          hidden_dim=256, proj_dim=64)
    c.model.name = "uno_net"
    c.schedule.update(name="cosine", learning_rate=0.1, warmup_epochs=1.0)
    c.train.update(eval_every_epochs=0, checkpoint_every_steps=5000)
    c.pretrain.overrides = pretrain + (known(5),)
    c.smoke.enabled = False
  else:   # cifar100: scripts/discover_cifar.yaml, pretrain_cifar.yaml
    c.data.update(name="cifar100", crop_padding=4, flip=True,
                  mean=(0.507, 0.487, 0.441), std=(0.267, 0.256, 0.276))
    c.data.category_discovery.update(kind="gcd", num_old=50,
                                     labelled_fraction=1.0,
                                     eval_on="unlabelled_train")
    # UNO's low-resolution ResNet-18 (3x3 stem, no max-pool) is closest to
    # the zoo's CIFAR PreAct-ResNet-18 (512-d features): the one deviation.
    c.model.kwargs = dict(base="preact_resnet18", num_labeled=50,
                          num_unlabeled=50, num_heads=4, hidden_dim=2048,
                          proj_dim=256)
    c.train.update(batch_size=512, num_epochs=500, eval_batch_size=1000,
                   log_every_steps=50, eval_every_epochs=10,
                   checkpoint_every_steps=2000)
    c.schedule.update(learning_rate=0.4, warmup_epochs=10.0)
    # UNO's pretraining (README, main_pretrain.py): 200 epochs, batch 256,
    # SGD 0.1, wd 1e-4 (the released CRKD pretraining cannot run as is).
    c.pretrain.overrides = pretrain + (
        known(50), "train.num_epochs=200", "train.batch_size=256",
        "schedule.learning_rate=0.1", "optim.weight_decay=1e-4")
    c.study.seeds = (0,)
  return c

"""Happy vs continual SimGCD in continual generalized category discovery.

Paper: Happy: A Debiased Learning Framework for Continual Generalized
Category Discovery, Ma et al., NeurIPS 2024, arXiv:2410.06535; code
mashijie1028/Happy-CGCD (full-scale settings: third_party_configs/happy/).

Protocol `continual_gcd`: stage 0 trains SimGCD on the labelled old
classes; stages 1..S each train on unlabelled data mixing a few examples
of every old and earlier-new class with many of the classes the stage
introduces, from the previous stage's model, with no replay. Each stage is
evaluated on the test examples of the classes seen so far (Hungarian v2
All / Old / New; Old = the stage-0 classes).

Variants (`--config=experiments/happy/config.py:<variant>`):
  digits    (default) CPU, minutes: embedded 8x8 digits, 4 old classes
            (0-3) labelled at 80% per class in stage 0; 3 stages adding
            {4,5}, {6,7}, {8,9}; per stage and class 100 examples of the
            new classes, 10 of each old and each earlier-new class; small
            CNN backbone; 30 epochs per stage.
  cifar100  the official CIFAR-100 recipe (not run here: needs the
            DINO ViT-B/16 backbone; third_party_configs/happy/).

Arms: `SimGCD` (continual SimGCD: self-distillation + InfoNCE + plain
me-max in the continual stages, new heads at random), `Happy` (soft
entropy regularisation, k-means new heads, hardness-aware prototype
sampling, feature distillation; no plain me-max, as the official online
step), `Happy (uniform sampling)` (prototypes drawn uniformly: the
official `compute_proto_aug_loss`). All arms share stage 0 exactly.

Example:
  python -m common run happy --seeds=0,1,2
"""

from algos.discovery import happy_method
from common.data import category_discovery
from common.protocols import continual_gcd

VARIANTS = ("digits", "cifar100")

_OFF = ",".join(f"method.happy.{k}=0.0" for k in (
    "memax_old_new_weight", "memax_old_in_weight", "memax_new_in_weight",
    "proto_aug_weight", "feat_distill_weight"))

# Official stage 0 (train_offline): lr 0.1, me-max 1, teacher temperature
# 0.07 -> 0.04 over 30 epochs (the method defaults); stages 1..T
# (train_online): lr 0.01, teacher temperature 0.05 (10 warm-up epochs).
_OFFLINE = ("method.happy.memax_weight=1.0",)
_ONLINE = ("schedule.learning_rate=0.01",
           "method.happy.warmup_teacher_temp=0.05",
           "method.happy.teacher_temp=0.05",
           "method.happy.warmup_teacher_temp_epochs=10")


def _stages(num_old: int, per_stage: int, num_stages: int, offline: tuple,
            online: tuple) -> tuple:
  """One override tuple per stage: which data, how many active classes."""
  def data(s):
    return f"data.category_discovery.continual.stage={s}"
  return ((data(0), f"method.happy.active_classes={num_old}") + offline,
          *((data(s), f"method.happy.active_classes="
             f"{num_old + per_stage * s}") + online
            for s in range(1, num_stages + 1)))


def _tables(num_stages: int) -> tuple:
  cols = tuple((f"stage {s}", s) for s in range(num_stages + 1))
  return tuple(dict(title=f"{name} accuracy (test, classes seen so far)",
                    cols=cols, metric=f"stage{{col}}/{key}", fmt=".3f")
               for name, key in (("All", "all_acc"), ("Old", "old_acc"),
                                 ("New", "new_acc")))


def get_config(variant: str = "digits"):
  c = continual_gcd.base_config()
  c.experiment = "happy"
  c.method.name = "happy"
  c.method.happy = dict(happy_method.DEFAULTS)
  # Happy's continual step has no plain me-max (train_online comments it
  # out); stage 0 sets its own below.
  c.method.happy.memax_weight = 0.0
  c.eval.name = "category_discovery"
  c.optim.update(name="sgd", momentum=0.9, nesterov=False,
                 weight_decay=5e-5)
  c.schedule.update(name="cosine", learning_rate=0.1)
  c.study.arms = {
      "SimGCD": f"method.happy.memax_weight=1.0,{_OFF},"
                "method.happy.init_new_head=False",
      "Happy": "",
      "Happy (uniform sampling)": "method.happy.hardness_aware=0.0",
  }
  c.study.metrics = ("final/all_acc", "final/old_acc", "final/new_acc")
  c.study.metric_labels = {"final/all_acc": "All (last stage)",
                           "final/old_acc": "Old (last stage)",
                           "final/new_acc": "New (last stage)"}
  c.study.formats = {m: ".3f" for m in c.study.metrics}
  c.study.paper_source = (
      "arXiv:2410.06535 abstract: '+7.5% overall (All) on ImageNet-100' "
      "over the best prior method; the per-stage tables were not "
      "available here (no number copied)")

  if variant == "digits":
    cd = category_discovery.default_config()
    cd.update(kind="gcd", num_old=4, eval_on="test")
    cd.continual = category_discovery.continual_config()
    cd.continual.update(num_stages=3, labelled_fraction=0.8,
                        old_per_stage=10, novel_new_per_stage=100,
                        novel_seen_per_stage=10)
    c.data.update(name="digits", crop_padding=1, flip=False, mean=(0.5,),
                  std=(0.5,), category_discovery=cd)
    c.model.name = "discovery_head"
    c.model.kwargs = dict(backbone="small_cnn",
                          backbone_kwargs=dict(widths=(16, 32, 64)),
                          hidden_dim=128, proj_dim=32, nlayers=2)
    c.train.update(batch_size=64, num_epochs=30, eval_batch_size=360,
                   log_every_steps=10, eval_every_epochs=0,
                   checkpoint_every_steps=1000)
    c.continual.stages = _stages(4, 2, 3, _OFFLINE, _ONLINE)
    c.study.tables = _tables(3)
    c.study.seeds = (0, 1, 2)
    c.study.name = "digits"
    c.study.artifacts = "experiments.happy.per_class:artifacts"
    c.smoke.enabled = True
    c.smoke.steps = 2
  elif variant == "cifar100":
    cd = category_discovery.default_config()
    cd.update(kind="gcd", num_old=50, eval_on="test")
    cd.continual = category_discovery.continual_config()
    cd.continual.update(num_stages=5, labelled_fraction=0.8,
                        old_per_stage=25, novel_new_per_stage=400,
                        novel_seen_per_stage=25)
    c.data.update(name="cifar100", crop_padding=4, flip=True)
    c.data.category_discovery = cd
    c.model.name = "discovery_head"
    c.model.kwargs = dict(backbone="preact_resnet18", hidden_dim=2048,
                          proj_dim=256, nlayers=3)
    c.train.update(batch_size=128, num_epochs=30, eval_batch_size=500)
    c.continual.stages = _stages(50, 10, 5,
                                 _OFFLINE + ("train.num_epochs=100",),
                                 _ONLINE)
    c.study.tables = _tables(5)
    c.study.seeds = (0,)
  else:
    raise ValueError(f"unknown happy variant {variant!r}; allowed: "
                     f"{VARIANTS}")
  return c

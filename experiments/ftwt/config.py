"""FTWT dynamic channel pruning vs static L1-norm pruning at matched FLOPs.

Paper: Fire Together Wire Together: A Dynamic Pruning Approach with
Self-Supervised Mask Prediction, Elkerdawy, Elhoushi, Zhang, Ray, CVPR 2022,
arXiv:2110.08232; official code https://github.com/selkerdawy/FTWT.

The `finetune` protocol trains the unpruned network once per seed
(`pretrain.overrides`: cross-entropy, gates off; official `job_baseline.sh`)
and every arm fine-tunes it (official `job_dynamic.sh`: from the pretrained
baseline):

* `dense`: fine-tuned with the gates off (the unpruned reference);
* `FTWT mu=<m>`: method `ftwt`, gates from the mask predictors, targets
  from the heat-map mass `mu`;
* `static keep=<r>`: static L1-norm channel pruning (the `round(r * C)`
  filters of largest L1 norm in every layer, the same for every input),
  fine-tuned. FLOPs ~ r^2 of the dense network.

Every arm uses method `ftwt` (static and dense arms with `mask_weight=0`:
cross-entropy only) so that the evaluator `dynamic_pruning` reports the
same metrics for all: test error, the mean per-input FLOPs ratio and the
reduction.

Variants (`--config=experiments/ftwt/config.py:<variant>`):
  digits    (default) CPU: 4-layer gated CNN (32/32/64/64, pool after 2)
            on the embedded 8x8 digits; 30 + 30 epochs. Predictor without
            the softmax (official `--softmax 0`): with it, 330 steps leave
            the predictor input-independent (measured: FLOPs std 0).
  shapes32  CPU, ~10 min/run under load: 6-layer gated CNN
            (16/32/32/64/64/128) on 3,000 shapes32/c10 images; 30 + 15 epochs.
  cifar10   full scale: the official CIFAR ResNet-56 (`gated_resnet`,
            55 gated convs) on CIFAR-10, official schedule and mu 0.80
            (third_party_configs/ftwt/).

Example:
  regjax run ftwt --seeds=0,1,2
"""

import ml_collections as mlc

from common.protocols import finetune

VARIANTS = ("digits", "shapes32", "cifar10")

_MUS = (0.8, 0.9)
_KEEPS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85)
_METRICS = ("pretrained/error", "finetuned/error", "finetuned/flops_reduction",
            "finetuned/flops_ratio_std", "finetuned/gate_accuracy",
            "finetuned/gate_keep")
_LABELS = {
    "pretrained/error": "dense pretrained error (%)",
    "finetuned/error": "error (%)",
    "finetuned/flops_reduction": "FLOPs reduction (%)",
    "finetuned/flops_ratio_std": "FLOPs ratio std over inputs",
    "finetuned/gate_accuracy": "gate acc. vs targets",
    "finetuned/gate_keep": "kept channel fraction",
}


# The unpruned pretraining run, shared by every arm of a seed (the arms'
# own settings are reset so that its fingerprint is the same for all).
_PRETRAIN = ("model.kwargs.gating=none", "model.kwargs.keep=1.0",
             "method.ftwt.mask_weight=0", "method.ftwt.mu=0.9")


def _arms(static_model: str) -> dict[str, str]:
  arms = {"dense": "model.kwargs.gating=none,method.ftwt.mask_weight=0"}
  for mu in _MUS:
    arms[f"ftwt_mu{round(mu * 100)}"] = f"method.ftwt.mu={mu}"
  for r in _KEEPS:
    arms[f"static_keep{round(r * 100)}"] = (
        f"model.kwargs.gating=static_l1,model.kwargs.keep={r},"
        "method.ftwt.mask_weight=0")
  del static_model
  return arms


def get_config(variant: str = "digits"):
  if variant not in VARIANTS:
    raise ValueError(f"unknown ftwt variant {variant!r}; allowed: "
                     f"{VARIANTS}")
  c = finetune.base_config()
  c.experiment = "ftwt"
  c.method.name = "ftwt"
  c.method.ftwt = mlc.ConfigDict(dict(mu=0.9, mask_weight=10.0,
                                      cooldown=0.5, inclusive=False))
  c.eval.name = "dynamic_pruning"
  c.optim.update(name="sgd", momentum=0.9, nesterov=False,
                 weight_decay=5e-4)
  c.model.name = "gated_cnn"
  c.study.arms = _arms("")
  c.study.metrics = _METRICS
  c.study.metric_labels = dict(_LABELS)
  c.study.formats = {m: ".2f" for m in _METRICS}
  c.study.name = variant
  c.study.paper_source = (
      "official README (selkerdawy/FTWT): CIFAR-10 VGG16-BN 93.82% -> "
      "93.73% at 56% FLOPs reduction (mu 0.92, decoupled), ResNet-56 "
      "93.66% -> 92.63% at 66% (mu 0.80)")
  if variant == "digits":
    c.data.update(name="digits", crop_padding=1, flip=False, mean=(0.5,),
                  std=(0.5,))
    c.model.kwargs = dict(widths=(32, 32, 64, 64), pool_after=(1,),
                          gating="dynamic", keep=1.0, decoupled=True,
                          softmax=False)
    c.schedule.update(name="cosine", learning_rate=0.01)
    c.train.update(batch_size=64, num_epochs=30, eval_batch_size=360,
                   log_every_steps=50, eval_every_epochs=0,
                   checkpoint_every_steps=5000)
    c.pretrain.overrides = _PRETRAIN + ("schedule.learning_rate=0.1",)
    c.study.seeds = (0, 1, 2)
    c.smoke.update(enabled=True, steps=2)
  elif variant == "shapes32":
    # The procedural shapes32/c10 task (experiments/shapes32_recipe.py's
    # data: 3,000 training images, flips, grey-centred normalisation).
    c.data.update(name="shapes32/c10", train_split="train[:3000]",
                  crop_padding=0, flip=True, mean=(0.5, 0.5, 0.5),
                  std=(0.25, 0.25, 0.25))
    c.model.kwargs = dict(widths=(16, 32, 32, 64, 64, 128),
                          pool_after=(0, 2, 4), gating="dynamic", keep=1.0,
                          decoupled=True, softmax=False)
    c.schedule.update(name="cosine", learning_rate=0.01)
    c.train.update(batch_size=64, num_epochs=15, eval_batch_size=1000,
                   log_every_steps=100, eval_every_epochs=0,
                   checkpoint_every_steps=5000)
    c.pretrain.overrides = _PRETRAIN + ("schedule.learning_rate=0.1",
                                        "train.num_epochs=30")
    c.study.seeds = (0, 1, 2)
    c.smoke.enabled = False
  else:
    # The paper's CIFAR-10 ResNet-56 setting: official job_baseline.sh
    # (pretraining) and job_dynamic.sh (FTWT), README row mu 0.80
    # decoupled (third_party_configs/ftwt/README.md).
    c.data.update(name="cifar10", crop_padding=4, flip=True,
                  mean=(0.4914, 0.4822, 0.4465), std=(0.2023, 0.1994, 0.2010))
    c.model.name = "gated_resnet"
    c.model.kwargs = dict(depth=56, gating="dynamic", keep=1.0,
                          decoupled=True, softmax=True)
    c.schedule.update(name="piecewise", learning_rate=0.01,
                      boundaries_epochs=(81.0, 122.0, 151.0),
                      decay_factor=0.1)
    c.train.update(batch_size=128, num_epochs=200, eval_batch_size=1000,
                   log_every_steps=100, eval_every_epochs=5,
                   checkpoint_every_steps=5000)
    c.pretrain.overrides = _PRETRAIN + ("schedule.learning_rate=0.1",)
    c.method.ftwt.mu = 0.8
    # Official README, CIFAR-10 ResNet-56: baseline 93.66%, mu 0.80
    # decoupled 92.63% at 66% FLOPs reduction.
    c.study.paper = {
        "dense": {"finetuned/error": 6.34},
        "ftwt_mu80": {"finetuned/error": 7.37,
                      "finetuned/flops_reduction": 66.0}}
    c.study.seeds = (0,)
    c.smoke.enabled = False
  return c

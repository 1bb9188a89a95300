"""SFDA: source-free domain adaptation for segmentation (prior-aware
entropy).

Paper: Source-Free Domain Adaptation for Image Segmentation, Bateson et
al., Medical Image Analysis 2022, arXiv:2108.03152; code mathilde-b/SFDA.

The `finetune` protocol trains a segmentation network on the labelled
source split (`pretrain.overrides`: `source_train`, cross-entropy), then
adapts it on the target split's images with this config's method, from
the source parameters, BatchNorm in train mode; both runs are evaluated on
the target test split, so a row's `pretrained/<m>` is "no adaptation" and
`finetuned/<m>` the adapted model. Arms: `entropy` (lamb_consprior 0: the
entropy term alone), `sfda` (entropy + KL to the size prior with
image-level tags, the official main setting), `sfda_notags` (the same
prior for every image: no target label at all), `adaent` (the paper's
AdaEnt baseline: the prior of each image predicted by a network trained on
the source, here the frozen source model; no target label), `oracle`
(cross-entropy on the target split's labels: target-supervised
fine-tuning, the official `fs` run).

Variants (`--config=experiments/sfda_seg/config.py:<variant>`):
  cpu       (default) CPU, minutes: U-Net (8/16/32) on the procedural
            `segshapes/domains` (4 classes, volumes of 8 slices, source and
            target "modalities"; common/data/segshapes).
  prostate  full scale, the official prostate SA -> SB recipe
            (`prostate.make`): 2 classes, batch 24, 100 epochs, Adam 1e-6
            (source: 5e-4), weight decay 1e-4, entropy weights (0.1, 0.9),
            size prior 8000 / 385^2. Needs the slices prepared as a TFDS
            dataset `sfda_prostate` (splits source_train, target_train,
            target_test; label maps) under --config.data.data_dir.
  spine     full scale, the official IVD recipe (`ivd.make`): as prostate on
            the `sfda_ivd` dataset.

Examples:
  python -m common run sfda_seg --seeds=0,1,2
  python -m common run sfda_seg --config=experiments/sfda_seg/config.py:prostate \
      --config.data.data_dir=/data/tfds --seeds=0
"""

from common.protocols import finetune

VARIANTS = ("cpu", "prostate", "spine")

_METRICS = ("pretrained/dice3d_fg", "finetuned/dice3d_fg",
            "finetuned/dice_fg", "finetuned/miou", "finetuned/dice3d/c1",
            "finetuned/dice3d/c2", "finetuned/dice3d/c3")
_LABELS = {
    "pretrained/dice3d_fg": "no adaptation: 3-D Dice (fg mean)",
    "finetuned/dice3d_fg": "adapted: 3-D Dice (fg mean)",
    "finetuned/dice_fg": "adapted: 2-D Dice (fg mean)",
    "finetuned/miou": "adapted: mIoU",
    "finetuned/dice3d/c1": "3-D Dice organ 1",
    "finetuned/dice3d/c2": "3-D Dice organ 2",
    "finetuned/dice3d/c3": "3-D Dice organ 3",
}


def _official(c, dataset: str, prior: float, size: int) -> None:
  """The official 2-class recipe of `prostate.make` / `ivd.make`."""
  c.data.update(name=dataset, train_split="target_train",
                eval_split="target_test", mean=(0.5,), std=(0.5,),
                image_size=size)
  # Slices per case vary: 3-D Dice needs the volumes' records grouped (a
  # fixed `eval.slices_per_volume`); 2-D Dice is reported without it.
  c.eval.slices_per_volume = 0
  c.model.name = "unet"
  # The official UNet (networks.py, nG=32): 32/64/128 and a 256 bridge.
  c.model.kwargs = dict(widths=(32, 64, 128, 256))
  c.method.sfda_seg.update(entropy_weights=(0.1, 0.9), size_prior=(prior,))
  c.optim.update(name="adamw", weight_decay=1e-4, b1=0.9, b2=0.999)
  # lr 1e-6, x0.9 every 20 epochs (exp_lr_scheduler, lr_decay_epoch 20).
  c.schedule.update(name="piecewise", learning_rate=1e-6, decay_factor=0.9,
                    boundaries_epochs=(20.0, 40.0, 60.0, 80.0))
  c.train.update(batch_size=24, num_epochs=100, eval_batch_size=96,
                 log_every_steps=50, eval_every_epochs=10)
  c.pretrain.overrides = (
      "data.train_split=source_train", "method.name=cross_entropy",
      "schedule.learning_rate=0.0005", "schedule.decay_factor=1.0",
      "method.sfda_seg.lamb_consprior=1.0", "method.sfda_seg.tags=labels")
  c.study.metrics = ("pretrained/dice_fg", "finetuned/dice_fg",
                     "finetuned/miou")
  c.study.formats = {}
  c.study.artifacts = ""
  c.study.seeds = (0,)


def get_config(variant: str = "cpu"):
  if variant not in VARIANTS:
    raise ValueError(f"unknown sfda_seg variant {variant!r}; allowed: "
                     f"{VARIANTS}")
  c = finetune.base_config()
  c.experiment = "sfda_seg"
  c.method.name = "sfda_seg"
  c.method.sfda_seg = dict(
      lamb_se=1.0, lamb_consprior=1.0, power=1.0,
      entropy_weights=(0.1, 0.3, 0.3, 0.3), tags="labels", size_prior=(),
      prior_dataset="segshapes/domains", prior_split="source_train",
      prior_data_dir="")
  c.eval.name = "segmentation"
  c.eval.slices_per_volume = 8
  c.study.arms = dict(
      entropy="method.sfda_seg.lamb_consprior=0.0",
      sfda="",
      sfda_notags="method.sfda_seg.tags=none",
      adaent="method.sfda_seg.tags=source_model",
      oracle="method.name=cross_entropy")
  c.study.metrics = _METRICS
  c.study.metric_labels = _LABELS
  c.study.formats = {m: ".1f" for m in _METRICS}
  c.study.artifacts = "experiments.sfda_seg.figures:artifacts"
  c.study.paper_source = (
      "not filled: the paper's tables (MedIA 2022, arXiv:2108.03152) were "
      "not available to us; see the README")

  if variant == "cpu":
    c.data.update(name="segshapes/domains", train_split="target_train",
                  eval_split="target_test", mean=(0.4,), std=(0.25,))
    c.model.name = "unet"
    c.model.kwargs = dict(widths=(8, 16, 32))
    c.optim.update(name="adamw", weight_decay=1e-4)
    c.schedule.update(name="constant", learning_rate=1e-4)
    c.train.update(batch_size=32, steps=150, eval_batch_size=200,
                   log_every_steps=25, eval_every_epochs=0,
                   checkpoint_every_steps=1000, tensorboard=False)
    # Source training: 400 steps of cross-entropy on source_train.
    # The sfda_seg keys are reset so that every arm of a seed shares one
    # source model (the pretraining run is found by its config's hash).
    c.pretrain.overrides = (
        "data.train_split=source_train", "method.name=cross_entropy",
        "schedule.learning_rate=0.003", "train.steps=400",
        "method.sfda_seg.lamb_consprior=1.0", "method.sfda_seg.tags=labels")
    c.study.seeds = (0, 1, 2)
    c.smoke.enabled = True
  elif variant == "prostate":
    # 385^2 slices (sizes/prostate.csv), center-cropped to 384 for the
    # U-Net's three poolings.
    _official(c, "sfda_prostate", 8000 / 385**2, 384)
  else:
    # ivd.make: the same recipe; sizes/ivd.csv's dumbpredwtags column.
    _official(c, "sfda_ivd", 579 / 256**2, 0)
  return c

"""RePRI: transductive few-shot segmentation on a base-trained backbone.

Paper: Few-Shot Segmentation Without Meta-Learning: A Good Transductive
Inference Is All You Need?, Boudiaf et al., CVPR 2021, arXiv:2012.06166;
code mboudiaf/RePRI-for-Few-Shot-Segmentation.

Protocol `fewshot_seg` (common/protocols/fewshot_seg.py): the backbone is
trained with per-pixel cross-entropy on the fold's base classes (novel
classes ignored), then frozen; novel-class episodes are solved by the
prototype baseline, RePRI and Oracle-RePRI (algos/segmentation/repri.py),
1 and 5 shots. Arms are the folds.

Variants (`--config=experiments/repri/config.py:<variant>`):
  segshapes  (default) CPU, ~5 min per fold: U-Net (16, 32, 64) on the
             procedural 32x32 segshapes/fewshot (20 object classes, 4 folds
             of 5), 4 epochs, 500 episodes per K.
  tiny       the smoke path: the same on a U-Net (4, 8), 2 steps (the
             solvers' compilations dominate its time).
  pascal5i   the official PASCAL-5i recipe (config_files/pascal.yaml):
             ResNet-50 + decoder, 417 x 417, SGD 2.5e-3 Nesterov, cosine,
             batch 12, 100 epochs, 1000 episodes; needs the dataset under
             --config.data.data_dir (third_party_configs/repri/).
  coco20i    the same on COCO-20i (config_files/coco.yaml): 20 epochs,
             interleaved folds.

Examples:
  regjax run repri --seeds=0,1,2
  regjax run repri --config=experiments/repri/config.py:pascal5i \
      --config.data.data_dir=/data/tfds --seeds=0
"""

from common.protocols import fewshot_seg

VARIANTS = ("segshapes", "tiny", "pascal5i", "coco20i")

FOLDS = 4
SHOTS = (1, 5)
SOLVERS = ("prototype", "repri", "repri_oracle")

# Official README tables (RN-50), mIoU, per fold and mean: 1 shot / 5 shot.
_README_PASCAL = {
    "repri": {0: (60.2, 64.5), 1: (67.0, 70.8), 2: (61.7, 71.7),
              3: (47.5, 60.3), "mean": (59.1, 66.8)},
    "repri_oracle": {0: (72.4, 75.1), 1: (78.0, 80.8), 2: (77.1, 81.4),
                     3: (65.8, 74.4), "mean": (73.3, 77.9)},
}
_README_COCO = {
    "repri": {0: (31.2, 38.5), 1: (38.1, 46.2), 2: (33.3, 40.0),
              3: (33.0, 43.6), "mean": (34.0, 42.1)},
    "repri_oracle": {0: (49.3, 51.5), 1: (51.4, 60.8), 2: (38.2, 54.7),
                     3: (41.6, 55.2), "mean": (45.1, 55.5)},
}


def metric(shots: int, solver: str, name: str = "miou") -> str:
  return f"{shots}shot/{solver}/{name}"


def _paper(readme) -> dict[str, dict[str, float]]:
  """arm (fold) -> {metric: README mIoU / 100}."""
  return {f"fold{f}": {metric(k, s): readme[s][f][i] / 100
                       for s in readme for i, k in enumerate(SHOTS)}
          for f in range(FOLDS)}


def get_config(variant: str = "segshapes"):
  c = fewshot_seg.base_config()
  c.experiment = "repri"
  c.method.name = "cross_entropy"
  c.study.arms = {f"fold{f}": f"fewshot.fold={f}" for f in range(FOLDS)}
  c.study.metrics = tuple(metric(k, s) for k in SHOTS for s in SOLVERS)
  c.study.artifacts = "experiments.repri.figures:artifacts"
  c.study.metric_labels = {metric(k, s): f"{k}-shot {s}" for k in SHOTS
                           for s in SOLVERS}
  c.eval.fewshot.update(shots=SHOTS, solvers=SOLVERS)
  c.optim.update(name="sgd", momentum=0.9, nesterov=True, weight_decay=1e-4,
                 weight_decay_mask="all")
  c.schedule.update(name="cosine")
  # Official `smoothing: True` (eps 0.1 spread over the C-1 other classes;
  # ours spreads eps over all C: targets differ by eps / (C (C - 1))).
  c.method.cross_entropy.label_smoothing = 0.1

  if variant in ("segshapes", "tiny"):
    c.data.update(name="segshapes/fewshot", mean=(0.5,), std=(0.5,),
                  flip=False, crop_padding=0)
    c.model.name = "unet"
    c.model.kwargs = dict(widths=(16, 32, 64))
    c.schedule.learning_rate = 0.05
    c.train.update(batch_size=32, num_epochs=4, eval_batch_size=200,
                   log_every_steps=50, checkpoint_every_steps=2000)
    c.eval.fewshot.update(episodes=500, chunk=100, min_pixels=12)
    c.study.seeds = (0, 1)
    # The CPU study; `tiny` is the smoke path (the study's U-Net train step
    # alone compiles for about a minute on 2 loaded cores).
    c.smoke.enabled = variant == "tiny"
    c.smoke.steps = 2
    if variant == "tiny":
      c.model.kwargs = dict(widths=(4, 8))
      c.eval.fewshot.solvers = ("prototype", "repri")
  elif variant in ("pascal5i", "coco20i"):
    pascal = variant == "pascal5i"
    c.data.update(name="pascal5i" if pascal else "coco20i",
                  image_size=417, flip=False,
                  mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    c.fewshot.update(num_classes=20 if pascal else 80,
                     interleaved=not pascal)
    c.model.name = "resnet50_seg"
    c.schedule.learning_rate = 2.5e-3
    c.train.update(batch_size=12, num_epochs=100 if pascal else 20,
                   eval_batch_size=24, log_every_steps=50,
                   checkpoint_every_steps=2000)
    # 2 * 32 * 32 pixels (src/dataset/utils.py); 1000 episodes (test_num).
    c.eval.fewshot.update(episodes=1000, chunk=100, min_pixels=2048)
    c.study.paper = _paper(_README_PASCAL if pascal else _README_COCO)
    c.study.paper_source = ("mboudiaf/RePRI-for-Few-Shot-Segmentation "
                            "README, ResNet-50, "
                            + ("Pascal-5i" if pascal else "Coco-20i"))
    c.study.seeds = (0,)
  else:
    raise ValueError(f"unknown repri variant {variant!r}; allowed: "
                     f"{VARIANTS}")
  return c

"""CA calibration vs temperature and vector scaling, in and out of
distribution.

Paper: Optimizing Calibration by Gaining Aware of Prediction Correctness,
Liu et al., arXiv:2404.13016; code liuyvchi/Correctness-aware-calibration.

The `finetune` protocol trains the classifier (`pretrain.overrides`: cross-
entropy on the classifier's training images; shared by every arm of a
seed), then trains each post-hoc calibrator on a held-out calibration set
through the shared train step (the classifier frozen in the method state,
`algos/calibration/frozen.py`). The evaluator `calibration_shift` scores
the calibrated predictions on the clean test split (unprefixed metrics)
and on the corrupted test sets (`shift/<metric>`, mean over corruptions).
`pretrained/<m>` are the uncalibrated classifier's, `finetuned/<m>` the
calibrated ones.

Variants (`--config=experiments/ca_calib/config.py:<variant>`):
  digits    (default) CPU: small CNN on 1,000 `digits_corrupted/clean`
            training images; calibration set: the other 437; tests: the
            360 clean test images and their 15 corruptions at severity 5.
  shapes32  CPU: the shapes32 recipe's 6-layer ResNet on 3,000
            `shapes32/c10` training images; calibration set: test images
            2,000-3,999; tests: the first 2,000 test images, clean and with
            5 corruptions at severity 5 (`shapes32_corrupted`).
  imagenet  full scale (names the real data, `data_dir`): ResNet-50 on
            ImageNet train, calibrated on ImageNet validation, shifted
            tests ImageNet-A/-R/-Sketch (third_party_configs/ca_calib).

Examples:
  python -m common run ca_calib --seeds=0,1,2
  python -m common run ca_calib --config=experiments/ca_calib/config.py:shapes32 --seeds=0,1,2
"""

import ml_collections as mlc

from algos.calibration import ca_calib
from common.data import corruptions
from common.protocols import finetune
from experiments import shapes32_recipe

VARIANTS = ("digits", "shapes32", "imagenet")

_ARMS = {
    "CA": "method.name=ca_calib",
    "CA unbalanced": "method.name=ca_calib,method.ca_calib.balance=0.0",
    # One or a few numbers each: a larger step, so that the Adam fit
    # converges within the calibrators' shared step budget (the official
    # TS fits by L-BFGS to convergence).
    "TS": "method.name=temperature_scaling,schedule.learning_rate=0.02",
    "VS": "method.name=vector_scaling,schedule.learning_rate=0.02",
}
_METRICS = ("pretrained/error", "pretrained/ece", "finetuned/ece",
            "finetuned/nll", "finetuned/aurc", "pretrained/shift/error",
            "pretrained/shift/ece", "finetuned/shift/ece",
            "finetuned/shift/nll", "finetuned/shift/aurc")
_LABELS = {
    "pretrained/error": "error (clean)",
    "pretrained/ece": "uncal. ECE (clean)",
    "finetuned/ece": "ECE (clean)",
    "finetuned/nll": "NLL (clean)",
    "finetuned/aurc": "AURC (clean)",
    "pretrained/shift/error": "error (corrupted)",
    "pretrained/shift/ece": "uncal. ECE (corrupted)",
    "finetuned/shift/ece": "ECE (corrupted)",
    "finetuned/shift/nll": "NLL (corrupted)",
    "finetuned/shift/aurc": "AURC (corrupted)",
}


def _severity5(prefix: str) -> tuple[str, ...]:
  return tuple(f"{prefix}/{c}_5" for c in corruptions.BENCHMARK_CORRUPTIONS)


def _classifier(split: str, epochs: int, batch: int) -> tuple[str, ...]:
  """`pretrain.overrides`: the source classifier's recipe (tta_common's:
  SGD 0.1 Nesterov, cosine, random crops) on `split`."""
  return ("method.name=cross_entropy", f"data.train_split={split}",
          "data.crop_padding=4", "optim.name=sgd", "optim.momentum=0.9",
          "optim.weight_decay=0.0005", "schedule.name=cosine",
          "schedule.learning_rate=0.1", f"train.batch_size={batch}",
          f"train.num_epochs={epochs}")


def _cpu(c, shifted: str, dataset: str, calibration_split: str,
         test_split: str, classifier: tuple[str, ...], *, batch: int,
         epochs: int, eval_batch: int) -> None:
  """A CPU variant: the classifier's recipe, the calibration and test
  splits of `dataset`, and the severity-5 corruptions of `shifted`."""
  c.data.update(name=dataset, train_split=calibration_split,
                eval_split=test_split)
  c.eval.shift.datasets = _severity5(shifted)
  c.pretrain.overrides = classifier
  c.train.update(batch_size=batch, num_epochs=epochs,
                 eval_batch_size=eval_batch, log_every_steps=50,
                 eval_every_epochs=0, checkpoint_every_steps=10000,
                 tensorboard=False)
  c.study.seeds = (0, 1, 2)


def get_config(variant: str = "digits"):
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; allowed: {VARIANTS}")
  c = finetune.base_config()
  c.experiment = "ca_calib"
  c.method.name = "ca_calib"
  # t_bias=1: the calibrator starts near T = 1 (with the official init,
  # t_bias=0, every temperature of a seed can start clipped at 0.1 and
  # never move; see algos/calibration/ca_calib.py).
  c.method.ca_calib = mlc.ConfigDict(dict(ca_calib.DEFAULTS, t_bias=1.0))
  c.method.temperature_scaling = mlc.ConfigDict()
  c.method.vector_scaling = mlc.ConfigDict()
  # The calibrators: Adam without weight decay (official CA: Adam), no
  # augmentation of the calibration images.
  c.optim.update(name="adamw", weight_decay=0.0)
  c.schedule.update(name="constant", learning_rate=3e-3, warmup_epochs=0.0)
  c.data.update(crop_padding=0, flip=False, mean=(0.5,), std=(0.5,))
  c.model.name = "small_cnn"
  c.model.kwargs = dict(widths=(8, 16, 32))
  c.eval.name = "calibration_shift"
  c.eval.shift = mlc.ConfigDict(dict(datasets=(), split="test"))
  c.study.arms = dict(_ARMS)
  c.study.metrics = _METRICS
  c.study.metric_labels = dict(_LABELS)
  c.study.formats = {m: ".2f" for m in _METRICS}
  c.study.name = variant
  c.study.paper_source = (
      "no result table of the paper is readable offline (arXiv 2404.13016 "
      "text not reachable; the official README has none)")

  if variant == "digits":
    # 437 calibration images: batch 144 (3 steps an epoch), 40 epochs.
    _cpu(c, "digits_corrupted", "digits_corrupted/clean", "train[1000:]",
         "test", _classifier("train[:1000]", 20, 64), batch=144, epochs=40,
         eval_batch=360)
    c.smoke.update(enabled=True, steps=2)
  elif variant == "shapes32":
    # The calibrated shapes32 recipe (experiments/shapes32_recipe.py): a
    # 6-layer ResNet fitted on 3,000 images, over-confident on test. The
    # calibration set: 2,000 held-out test images; tests: the first 2,000
    # test images, clean and with 5 corruptions (severity 5) that span
    # noise, blur, weather, contrast and compression.
    recipe = shapes32_recipe.apply(mlc.ConfigDict(dict(
        data=mlc.ConfigDict(), model=mlc.ConfigDict(),
        train=mlc.ConfigDict(), schedule=mlc.ConfigDict())))
    c.model.name = recipe.model.name
    c.model.kwargs = dict(recipe.model.kwargs)
    c.data.update(mean=recipe.data.mean, std=recipe.data.std)
    classifier = ("method.name=cross_entropy",
                  f"data.train_split={recipe.data.train_split}",
                  "data.flip=True", "optim.name=sgd", "optim.momentum=0.9",
                  "optim.weight_decay=0.0005", "schedule.name=cosine",
                  f"schedule.learning_rate={recipe.schedule.learning_rate}",
                  f"train.batch_size={recipe.train.batch_size}",
                  f"train.num_epochs={recipe.train.num_epochs}")
    _cpu(c, "shapes32_corrupted", "shapes32/c10", "test[2000:4000]",
         "test[:2000]", classifier, batch=200, epochs=12, eval_batch=1000)
    c.eval.shift.datasets = tuple(
        f"shapes32_corrupted/{n}_5" for n in (
            "gaussian_noise", "defocus_blur", "fog", "contrast",
            "jpeg_compression"))
  else:
    c.data.update(name="imagenet2012", train_split="validation",
                  eval_split="validation", image_size=224,
                  mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    c.eval.shift.update(datasets=("imagenet_a", "imagenet_r",
                                  "imagenet_sketch"), split="test")
    c.model.name = "resnet50"
    c.model.kwargs = {}
    c.pretrain.overrides = (
        "method.name=cross_entropy", "data.train_split=train",
        "data.flip=True", "optim.name=sgd", "optim.momentum=0.9",
        "optim.weight_decay=0.0001", "schedule.name=cosine",
        "schedule.learning_rate=0.1", "train.batch_size=256",
        "train.num_epochs=90")
    # The official calibrator recipe: Adam 1e-4, batch 1000, 10 epochs.
    c.schedule.learning_rate = 1e-4
    c.train.update(batch_size=1000, num_epochs=10, eval_batch_size=1000,
                   eval_every_epochs=0)
    c.study.seeds = (0,)
  return c

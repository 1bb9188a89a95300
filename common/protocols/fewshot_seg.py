"""The few-shot segmentation protocol: base training, then novel episodes.

As RePRI (Boudiaf et al., CVPR 2021, arXiv:2012.06166; official
mboudiaf/RePRI-for-Few-Shot-Segmentation) and the PASCAL-5i / COCO-20i
benchmarks, one run of a fold

1. trains the backbone with the supervised loop (the one train step,
   per-pixel cross-entropy of `config.method`) in `<workdir>/train` on the
   fold's base classes: `data.classes = (0, *base)` relabels them 1..B
   and turns the novel classes into ignored pixels (255), as the official
   `StandardData` (images without a base class are dropped);
2. evaluates the frozen backbone on episodes of the novel classes with the
   `fewshot_segmentation` evaluator (`common.eval.fewshot_segmentation`:
   every solver of `eval.fewshot.solvers` x every K of
   `eval.fewshot.shots`), as the training's final evaluation.

The fold is `fewshot.fold` of `fewshot.num_folds` over
`fewshot.num_classes` object classes (`fewshot.interleaved`: COCO-20i's
split); `data.classes` and `eval.fewshot.novel_classes` are derived from it
(leave them empty), so a study's arms are `fewshot.fold=<i>`. Resume,
SIGTERM and the refusal of another config are the supervised loop's.
"""

from __future__ import annotations

import dataclasses
import os
import time

import ml_collections as mlc

from common import config as config_lib
from common.data import fewshot_episodes
from common.eval import fewshot_segmentation
from common.protocols import Protocol
from common.protocols import RunResult
from common.protocols import register_protocol
from common.protocols import runs
from common.protocols import supervised


def base_config() -> mlc.ConfigDict:
  """The supervised schema, the few-shot evaluator and the `fewshot` fold."""
  c = supervised.base_config()
  c.protocol = "fewshot_seg"
  c.eval = mlc.ConfigDict(dict(name="fewshot_segmentation"))
  c.eval.fewshot = fewshot_segmentation.default_config()
  c.train.eval_every_epochs = 0
  c.fewshot = mlc.ConfigDict(dict(
      fold=0, num_folds=4,
      num_classes=20,          # object classes (background excluded)
      interleaved=False))      # COCO-20i's split (use_split_coco)
  return c


RULES = {
    "fewshot.fold": config_lib.at_least(0, integer=True),
    "fewshot.num_folds": config_lib.at_least(2, integer=True),
    "fewshot.num_classes": config_lib.at_least(2, integer=True),
    "eval.fewshot.shots": config_lib.each(config_lib.at_least(1,
                                                               integer=True)),
    "eval.fewshot.episodes": config_lib.at_least(1, integer=True),
    "eval.fewshot.chunk": config_lib.at_least(1, integer=True),
    "eval.fewshot.min_pixels": config_lib.at_least(1, integer=True),
    "eval.fewshot.solvers": config_lib.nonempty_tuple(),
}


def fold_config(config: mlc.ConfigDict) -> mlc.ConfigDict:
  """`config` with the fold's `data.classes` and novel classes filled in."""
  f = config.fewshot
  for key in ("data.classes", "eval.fewshot.novel_classes"):
    if tuple(config_lib.lookup(config, key)):
      raise config_lib.ConfigError(
          f"config.{key} is derived from config.fewshot (fold "
          f"{f.fold}); leave it empty")
  try:
    base, novel = fewshot_episodes.fold_classes(
        f.num_classes, f.num_folds, f.fold, f.interleaved)
  except ValueError as e:
    raise config_lib.ConfigError(f"config.fewshot: {e}") from e
  return config_lib.apply_overrides(config, {
      "data.classes": (0, *base), "eval.fewshot.novel_classes": novel})


def validate(config: mlc.ConfigDict) -> None:
  config_lib.check_rules(config, RULES)
  derived = fold_config(config)
  if derived.eval.name != "fewshot_segmentation":
    raise config_lib.ConfigError(
        f"config.eval.name={derived.eval.name!r}; the fewshot_seg protocol "
        "evaluates with 'fewshot_segmentation'")
  for name in derived.eval.fewshot.solvers:
    try:
      fewshot_segmentation.get_solver(
          name, derived.eval.fewshot.settings.get(name, {}))
    except ValueError as e:
      raise config_lib.ConfigError(f"config.eval.fewshot: {e}") from e
  supervised.validate(derived)


def run(config: mlc.ConfigDict, workdir: str, show_progress: bool = True,
        desc: str = "") -> RunResult:
  """Trains the fold's backbone in `<workdir>/train` and reports its
  episodic evaluation (see the module docstring)."""
  start = time.time()
  cached = runs.begin(config, workdir, validate)
  if cached is not None:
    return cached
  trained = supervised.train(fold_config(config),
                             os.path.join(workdir, "train"),
                             show_progress=show_progress, desc=desc)
  runs.write_config(workdir, config)
  return dataclasses.replace(trained, workdir=workdir,
                             seconds=time.time() - start)


def smoke(config: mlc.ConfigDict, workdir: str) -> None:
  """A few training steps on the first 256 training images, then 4
  episodes of every solver at the first K on the first 200 evaluation
  images (every K and solver variant is a compilation)."""
  d = config.data
  first = lambda split, n: split if "[" in split else f"{split}[:{n}]"
  config = config_lib.apply_overrides(config, {
      "train.steps": config.smoke.steps, "train.tensorboard": False,
      "data.train_split": first(d.train_split, 256),
      "eval.fewshot.split": first(config.eval.fewshot.split
                                  or d.eval_split, 200),
      "eval.fewshot.episodes": 4, "eval.fewshot.chunk": 4,
      "eval.fewshot.shots": tuple(config.eval.fewshot.shots)[:1]})
  result = run(config, workdir, show_progress=False)
  expected = {f"{k}shot/{s}/miou" for k in config.eval.fewshot.shots
              for s in config.eval.fewshot.solvers}
  if result.status != "finished" or not expected <= set(result.final):
    raise AssertionError(f"smoke run ended {result.status} with "
                         f"{sorted(result.final)}")


@register_protocol("fewshot_seg")
def protocol() -> Protocol:
  return Protocol(name="fewshot_seg", base_config=base_config,
                  validate=validate, run=run, smoke=smoke)

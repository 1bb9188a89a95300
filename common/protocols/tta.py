"""The test-time adaptation (TTA) protocol: a source model, then streams.

One run is one (arm, seed): train (or reuse) the source model on the clean
data through the supervised protocol, then adapt a copy of it on test
streams with the ONE train step (`common/core/train_step.py`), every batch
predicted and then used for one update, through the arm's Method v2
(`config.adapt.method`, hyperparameters in `config.tta.<method>`):

* `reset`: before each corruption the TrainState is re-initialised from
  the source (params, optimizer state and method state: the official
  `reset()`s reload model and optimizer), Tent's table.
* `continual`: the corruptions in sequence, never reset (CoTTA's table);
  then the clean error of the adapted model (EATA's forgetting claim) and
  the samples / rows that went through backward passes.
* `lifelong`: that sequence repeated `adapt.rounds` times without reset.
* `openset`: `lifelong` on streams that also hold classes the source model
  never saw (`data.classes` keeps the known ones for the source training;
  the stream keeps every class, unknowns labelled -1); the error is over
  the known-class samples.

Each stream is walked as a host loop of asynchronously dispatched jitted
steps on CPU (XLA:CPU runs convolution gradients ~10x slower inside a
`while` loop) and as one `lax.scan` over `train_step_fn` on accelerators
(`adapt.loop`); both give the same numbers up to float summation order.
A method's init gets clean source batches in `InitContext.extras`
(`adapt.init_split`, `adapt.init_size`: EATA's Fisher, CoTTA's gate).

The source models live in `<study>/source_models/seed_<k>` (shared by
every arm of a seed; `adapt.source_dir` to share them across studies) and
resume like any supervised run. The adaptation resumes per unit: a reset corruption,
or a corruption of the sequential rounds; on SIGTERM the run saves its
progress (and the sequential TrainState) after the current unit and
returns "preempted". The flat metrics: `reset/<corruption>/error`,
`continual/r<k>/<corruption>/error`, `.../mean/error`, `clean/before`,
`clean/after_r1`, `clean/after_last`, `backward/samples` and
`backward/rows` (% of the round-1 stream), `continual/r1/<metric>` (mean of
the method's step metric over round 1) and `source/<metric>`.
"""

from __future__ import annotations

import json
import os
import re
import time
from typing import Any

import jax
import ml_collections as mlc
import numpy as np

from common import config as config_lib
from common.core import checkpoint as checkpoint_lib
from common.core import method as method_lib
from common.core import sharding as sharding_lib
from common.data import preprocess as preprocess_lib
from common.data import streams as streams_lib
from common.protocols import Protocol
from common.protocols import RunResult
from common.protocols import register_protocol
from common.protocols import runs
from common.protocols import supervised
from common.protocols import tta_loop

PROTOCOLS = ("reset", "continual", "lifelong", "openset")
CORRUPTIONS = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur",
    "frosted_glass_blur", "motion_blur", "zoom_blur", "snow", "frost", "fog",
    "brightness", "contrast", "elastic", "pixelate", "jpeg_compression")
PROGRESS = "progress.json"


def base_config() -> mlc.ConfigDict:
  """The source training sections (supervised) + `adapt` and `tta`."""
  c = supervised.base_config()
  c.protocol = "tta"
  c.study.metrics = ()
  c.adapt = mlc.ConfigDict(dict(
      method="tent",              # a registered Method v2 (algos/tta)
      stream="digits_corrupted",  # TFDS base name of the corrupted data
      severity=5, split="test", corruptions=CORRUPTIONS,
      batch_size=60, protocols=("reset", "continual"),
      rounds=10,                  # lifelong / openset rounds
      shuffle=True,
      clean_name="digits_corrupted/clean", clean_split="test",
      # Clean source images for the method's init (`extras`).
      init_split="train", init_size=480,
      source_dir="",              # default <study>/source_models
      source_checkpoint="",       # converted PyTorch weights instead
      train_source=True,          # False: source_checkpoint is required
      cache_streams=True,         # keep every stream on device
      chunk_batches=0,            # >0: batches per device chunk
      max_batches=0,              # >0: truncate every stream (smoke)
      loop="auto"))               # "host" | "scan" | "auto" (by platform)
  c.adapt.optim = mlc.ConfigDict(dict(
      name="adamw", learning_rate=1e-3, momentum=0.9, nesterov=False,
      b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0))
  # tta.<method>: each adaptation method's section (its config dict).
  c.tta = mlc.ConfigDict()
  return c


RULES = {
    "data.source": config_lib.one_of("tfds"),
    "data.preprocess": config_lib.one_of("image"),
    "adapt.severity": config_lib.at_least(1, integer=True),
    "adapt.corruptions": config_lib.nonempty_tuple(),
    "adapt.batch_size": config_lib.at_least(1, integer=True),
    "adapt.protocols": config_lib.Rule(
        f"a non-empty tuple of {list(PROTOCOLS)}",
        lambda v: isinstance(v, tuple) and bool(v) and set(v) <= set(
            PROTOCOLS)),
    "adapt.rounds": config_lib.at_least(1, integer=True),
    "adapt.init_size": config_lib.at_least(0, integer=True),
    "adapt.chunk_batches": config_lib.at_least(0, integer=True),
    "adapt.max_batches": config_lib.at_least(0, integer=True),
    "adapt.loop": config_lib.one_of("auto", "host", "scan"),
    "adapt.optim.name": config_lib.one_of("sgd", "adamw"),
    "adapt.optim.learning_rate": config_lib.at_least(0.0),
    "adapt.optim.momentum": config_lib.between(0.0, 1.0),
    "adapt.optim.b1": config_lib.between(0.0, 1.0),
    "adapt.optim.b2": config_lib.between(0.0, 1.0),
    "adapt.optim.eps": config_lib.greater_than(0.0),
    "adapt.optim.weight_decay": config_lib.at_least(0.0),
}


def validate(config: mlc.ConfigDict) -> None:
  """The adaptation's ranges (before the source sections build a
  generator or a method), then the source sections' checks."""
  config_lib.check_rules(config, RULES)
  supervised.validate(config)
  a = config.adapt
  if a.method not in method_lib.method_names():
    raise config_lib.ConfigError(
        f"config.adapt.method={a.method!r} is not a registered method; "
        f"registered: {method_lib.method_names()}")
  if a.method not in config.tta:
    raise config_lib.ConfigError(
        f"config.tta has no section for adapt.method={a.method!r}; add "
        f"config.tta.{a.method} = ConfigDict(...) (sections: "
        f"{sorted(config.tta)})")
  try:
    method = method_lib.get_method(a.method,
                                   config.tta[a.method].to_dict())
  except (TypeError, ValueError) as e:   # the factory's static checks
    raise config_lib.ConfigError(f"config.tta.{a.method}: {e}") from e
  config_lib.check_rules(config, {f"tta.{a.method}.{k}": r for k, r in (
      method.rules or {}).items()})
  if "openset" in a.protocols and not config.data.classes:
    raise config_lib.ConfigError(
        "config.adapt.protocols has 'openset' but config.data.classes is "
        "empty: set the known classes, e.g. (0, 1, 2, 3, 4, 5)")


# ------------------------------------------------------------ source model
def source_config(config: mlc.ConfigDict, seed: int) -> mlc.ConfigDict:
  """The supervised config of the source model of `seed`: only the
  sections that define its training, so studies with the same recipe
  (eata and cotta) share one `adapt.source_dir`."""
  c = supervised.base_config()
  c.experiment = "tta_source"
  for section in ("data", "model", "method", "optim", "schedule", "train",
                  "eval"):
    setattr(c, section, config[section].copy_and_resolve_references())
  c.seed = seed
  c.train.tensorboard = False
  c.lock()
  return c


def source_dir(config: mlc.ConfigDict, workdir: str) -> str:
  """`adapt.source_dir`, else `<study>/source_models` for a study's
  `<study>/<arm>/seed_<k>` workdir, else `<workdir>/source`."""
  if config.adapt.source_dir:
    return config.adapt.source_dir
  workdir = os.path.abspath(workdir)
  if re.fullmatch(r"seed_\d+", os.path.basename(workdir)):
    return os.path.join(os.path.dirname(os.path.dirname(workdir)),
                        "source_models")
  return os.path.join(workdir, "source")


def source_model(config: mlc.ConfigDict, workdir: str,
                 show_progress: bool = False) -> tta_loop.Source | None:
  """Trains (or reuses) and restores the source model of `config.seed`;
  None when its training was preempted."""
  if config.adapt.source_checkpoint:
    return tta_loop.converted_source(config)
  if not config.adapt.train_source:
    raise ValueError(
        "this config adapts converted PyTorch weights: set "
        "--config.adapt.source_checkpoint=<dir written by "
        "common.convert.torch_to_flax> (see "
        "third_party_configs/tta_weights/README.md)")
  cfg = source_config(config, config.seed)
  folder = os.path.join(source_dir(config, workdir), f"seed_{config.seed}")
  result = supervised.train(cfg, folder, show_progress=show_progress,
                            desc=f"source seed {config.seed}")
  if result.status != "finished":
    return None
  s, state = supervised.restore(cfg, folder)
  return tta_loop.Source(
      model_name=cfg.model.name, model_kwargs=cfg.model.kwargs.to_dict(),
      params=state.params, model_state=state.model_state,
      num_classes=s.run.num_classes,
      image_shape=tuple(s.train_source.image_shape), final=result.final)


# ---------------------------------------------------------------- streams
def _spec(config: mlc.ConfigDict, name: str, split: str, salt: str,
          **kw) -> streams_lib.StreamSpec:
  a = config.adapt
  kw = {"max_batches": a.max_batches, "chunk_batches": a.chunk_batches,
        "cache": a.cache_streams, **kw}
  return streams_lib.StreamSpec(
      name=name, split=split, batch_size=a.batch_size, seed=config.seed,
      salt=salt, data_dir=config.data.data_dir,
      image_size=config.data.image_size, classes=tuple(config.data.classes),
      shuffle=a.shuffle, **kw)


def open_streams(config: mlc.ConfigDict, mesh: jax.sharding.Mesh):
  """`(corrupted streams by name, clean stream, init batches or None)`."""
  a = config.adapt
  streams = {c: streams_lib.Stream(_spec(
      config, f"{a.stream}/{c}_{a.severity}", a.split, c), mesh)
             for c in a.corruptions}
  clean = streams_lib.Stream(_spec(config, a.clean_name, a.clean_split,
                                   a.clean_split, known_only=True), mesh)
  init = None
  if a.init_size:
    init = streams_lib.Stream(_spec(
        config, a.clean_name, a.init_split, a.init_split, known_only=True,
        limit=a.init_size, max_batches=0, chunk_batches=0), mesh).stacked()[0]
  return streams, clean, init


# -------------------------------------------------------------------- run
def _load_progress(workdir: str) -> dict[str, Any]:
  path = os.path.join(workdir, PROGRESS)
  if not os.path.exists(path):
    return {"final": {}, "units": 0, "sequential": {}}
  with open(path) as f:
    return json.load(f)


def run(config: mlc.ConfigDict, workdir: str, show_progress: bool = True,
        desc: str = "", method: method_lib.Method | None = None
        ) -> RunResult:
  """One (arm, seed): source model, then every `adapt.protocols` unit.

  Args:
    config: a locked TTA config (one arm, `config.seed` set).
    workdir: the run's folder (progress, checkpoints, summary).
    show_progress: progress bar of the source training.
    desc: unused label (the engine's).
    method: a `Method` replacing the registered `adapt.method` (a
      notebook's fork); hyperparameters still from `tta.<adapt.method>`.

  Returns:
    The run's flat final metrics (see the module docstring).
  """
  del desc
  t_start = time.time()
  cached = runs.begin(config, workdir, validate)
  if cached is not None:
    return cached
  source = source_model(config, workdir, show_progress)
  if source is None:
    return RunResult("preempted", workdir, 0, {}, [], time.time() - t_start)
  mesh = sharding_lib.make_mesh()
  streams, clean, init_batches = open_streams(config, mesh)
  extras = None if init_batches is None else {
      "clean_batches": init_batches,
      "preprocess": preprocess_lib.make(tta_loop.adapt_config(
          config, source).data)}
  adapter = tta_loop.Adapter(config, source, mesh, extras, method)
  ckpt = checkpoint_lib.Checkpointer(workdir, max_to_keep=2)
  try:
    runs.check_same_config(workdir, config, (
        ckpt.latest_step() is not None
        or os.path.exists(os.path.join(workdir, PROGRESS))))
    progress = _load_progress(workdir)
    if not progress["units"]:
      runs.write_config(workdir, config)
    with runs.Preemption() as preemption:
      status = tta_loop.run_protocols(
          adapter, config, streams, clean, progress, ckpt,
          save=lambda p: runs.atomic_write(os.path.join(workdir, PROGRESS),
                                           json.dumps(p, indent=1)),
          stop=lambda: preemption.requested)
  finally:
    ckpt.close()
  final = {**{f"source/{k}": v for k, v in source.final.items()},
           **progress["final"]}
  result = RunResult(status, workdir, progress["units"],
                     final if status == "finished" else {}, [],
                     time.time() - t_start)
  if status == "finished":
    runs.write_summary(workdir, config, result)
  return result


def smoke(config: mlc.ConfigDict, workdir: str) -> None:
  """A few source steps, then the config's method on 2 corruptions (2
  batches each, 2 rounds); fails on anything non-finite."""
  a = config.adapt
  cfg = config_lib.apply_overrides(config, {
      "train.steps": config.smoke.steps, "train.tensorboard": False,
      "train.eval_every_epochs": 0,
      "adapt.corruptions": tuple(a.corruptions[:2]),
      "adapt.rounds": min(2, a.rounds), "adapt.max_batches": 2,
      "adapt.init_size": min(a.init_size, 2 * a.batch_size)})
  result = run(cfg, workdir, show_progress=False)
  bad = {k: v for k, v in result.final.items() if not np.isfinite(v)}
  if result.status != "finished" or bad or not result.final:
    raise AssertionError(f"smoke: {result.status}, non-finite {bad}")


@register_protocol("tta")
def protocol() -> Protocol:
  return Protocol(name="tta", base_config=base_config, validate=validate,
                  run=run, smoke=smoke)


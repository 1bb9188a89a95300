"""Data and source models for test-time adaptation studies.

* `source_model`: the classifier to adapt, either trained on the clean
  source data by the shared harness (`common.loop.train`, orbax checkpoint
  under `<source_dir>/seed_<k>`, reused by every arm, protocol and rerun) or
  read from a converted PyTorch file (`config.adapt.source_checkpoint`,
  `common.convert.torch_to_flax.load_converted`).
* `corruption_stream`: one corruption's test images as `[T, b, h, w, c]`
  uint8 batches in a per-seed random order (the remainder that does not
  fill a batch is dropped: batch statistics need full batches), with labels
  mapped to the source model's classes (-1 for open-set unknowns).
"""

from __future__ import annotations

import dataclasses
import os
import zlib
from typing import Any

import jax
import ml_collections as mlc
import numpy as np

from common import checkpoint as checkpoint_lib
from common import config as config_lib
from common import harness
from common import loop


@dataclasses.dataclass
class SourceModel:
  model: Any
  params: Any
  model_state: Any
  num_classes: int
  image_shape: tuple[int, int, int]
  clean_eval: dict[str, float]


def source_config(config: mlc.ConfigDict, seed: int) -> mlc.ConfigDict:
  """The training config of the source model of `seed`.

  Only the sections that define the source training are kept (data, model,
  method, optim, schedule, train), so experiments with the same recipe
  (e.g. eata and cotta) can share one `adapt.source_dir`.
  """
  c = config_lib.base_config()
  c.experiment = "tta_source"
  for section in ("data", "model", "method", "optim", "schedule", "train"):
    setattr(c, section, config[section].copy_and_resolve_references())
  c.seed = seed
  c.train.tensorboard = False
  c.lock()
  return c


def source_model(config: mlc.ConfigDict, source_dir: str, seed: int,
                 show_progress: bool = False) -> SourceModel:
  """Trains (or reuses) and restores the source model of `seed`.

  Args:
    config: the TTA experiment config; its `data`, `model`, `method`,
      `optim`, `schedule` and `train` sections describe the source training
      on the clean data (`data.classes` for an open-set source model).
    source_dir: folder of the source runs; seed k lives in `seed_<k>/`.
    seed: the seed.
    show_progress: progress bar while training.

  Returns:
    The model, its parameters and BatchNorm statistics, and its clean eval.
  """
  if config.adapt.source_checkpoint:
    return _converted_source(config)
  cfg = source_config(config, seed)
  workdir = os.path.join(source_dir, f"seed_{seed}")
  result = loop.train(cfg, workdir, show_progress=show_progress,
                      desc=f"source seed {seed}")
  if result.status != "finished":
    raise SystemExit(f"source training of seed {seed} was preempted; rerun "
                     f"the same command to resume it")
  s = harness.setup(cfg)
  ckpt = checkpoint_lib.Checkpointer(workdir)
  try:
    state = ckpt.restore_latest(s.abstract_state)
  finally:
    ckpt.close()
  if state is None:
    raise checkpoint_lib.CheckpointError(f"no checkpoint in {workdir} after "
                                         f"training the source model")
  return SourceModel(
      model=s.model, params=state.params, model_state=state.model_state,
      num_classes=s.run.num_classes,
      image_shape=tuple(s.train_source.image_shape),
      clean_eval=result.final_eval)


def _converted_source(config: mlc.ConfigDict) -> SourceModel:
  """A source model from a converted PyTorch state dict."""
  from common import models  # pylint: disable=g-import-not-at-top
  from common.convert import torch_to_flax  # pylint: disable=g-import-not-at-top
  path = config.adapt.source_checkpoint
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"config.adapt.source_checkpoint={path!r} does not exist; convert "
        f"the PyTorch weights with common.convert.torch_to_flax first")
  variables = dict(torch_to_flax.load_converted(path))
  params = variables.pop("params")
  num_classes = int(config.adapt.num_classes)
  model = models.get_model(config.model.name, num_classes,
                           dtype=config.model.dtype,
                           **config.model.kwargs.to_dict())
  size = config.data.image_size or 32
  return SourceModel(model=model, params=params, model_state=variables,
                     num_classes=num_classes, image_shape=(size, size, 3),
                     clean_eval={})


def _open(config: mlc.ConfigDict, name: str, split: str):
  from common.data import sources  # pylint: disable=g-import-not-at-top
  return sources.open_split(name, split, config.data.data_dir or None,
                            image_size=config.data.image_size or None)


def stream_name(config: mlc.ConfigDict, corruption: str) -> str:
  return f"{config.adapt.stream}/{corruption}_{config.adapt.severity}"


def map_labels(labels: np.ndarray, classes: tuple[int, ...]) -> np.ndarray:
  """Dataset labels -> source-model labels; -1 for classes it never saw."""
  if not classes:
    return labels.astype(np.int32)
  table = -np.ones(max(max(classes), int(labels.max())) + 1, np.int32)
  table[list(classes)] = np.arange(len(classes), dtype=np.int32)
  return table[labels]


def batches(images: np.ndarray, labels: np.ndarray, batch_size: int,
            rng: np.random.Generator | None
            ) -> tuple[np.ndarray, np.ndarray]:
  """`[n, ...]` -> `[T, b, ...]` (shuffled if `rng`; remainder dropped)."""
  order = rng.permutation(len(labels)) if rng is not None else np.arange(
      len(labels))
  t = len(labels) // batch_size
  if t == 0:
    raise ValueError(f"adapt.batch_size={batch_size} is larger than the "
                     f"{len(labels)} images of the stream")
  order = order[:t * batch_size]
  return (images[order].reshape(t, batch_size, *images.shape[1:]),
          labels[order].reshape(t, batch_size))


def corruption_stream(config: mlc.ConfigDict, corruption: str, seed: int,
                      ) -> tuple[np.ndarray, np.ndarray]:
  """One corruption's test stream for `seed`: images `[T, b, ...]`, labels.

  The order is a permutation drawn from `(seed, corruption)`, the same for
  every method, so arms see identical streams.
  """
  source = _open(config, stream_name(config, corruption), config.adapt.split)
  data = source.get(np.arange(len(source)))
  labels = map_labels(data["label"], tuple(config.data.classes))
  rng = np.random.default_rng([seed, _stable_hash(corruption)])
  return batches(data["image"], labels, config.adapt.batch_size, rng)


def clean_stream(config: mlc.ConfigDict, split: str, seed: int,
                 limit: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """Clean source-domain batches (clean error, EATA's Fisher data).

  Only the source model's classes are kept (all for a closed-set model).
  """
  source = _open(config, config.adapt.clean_name, split)
  data = source.get(np.arange(len(source)))
  labels = map_labels(data["label"], tuple(config.data.classes))
  keep = labels >= 0
  images, labels = data["image"][keep], labels[keep]
  rng = np.random.default_rng([seed, _stable_hash(split)])
  order = rng.permutation(len(labels))
  if limit:
    order = order[:limit]
  return batches(images[order], labels[order], config.adapt.batch_size, None)


def _stable_hash(text: str) -> int:
  return zlib.crc32(text.encode())


def put_stream(images: np.ndarray, mesh: jax.sharding.Mesh) -> jax.Array:
  """Places `[T, b, ...]` on the mesh, batch axis split over `"data"`."""
  from common import adapt  # pylint: disable=g-import-not-at-top
  return jax.device_put(images, adapt.stream_sharding(mesh))

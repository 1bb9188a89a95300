"""Data and source models for test-time adaptation studies.

* `source_model`: the classifier to adapt, either trained on the clean
  source data by the shared harness (`common.loop.train`, orbax checkpoint
  under `<source_dir>/seed_<k>`, reused by every arm, protocol and rerun) or
  read from a converted PyTorch file (`config.adapt.source_checkpoint`,
  `common.convert.torch_to_flax.load_converted`).
* `Stream`: a split (one corruption's test images, or clean data) as
  `[T, b, h, w, c]` uint8 device batches in a per-seed random order (the
  remainder that does not fill a batch is dropped: batch statistics need
  full batches), with labels mapped to the source model's classes (-1 for
  open-set unknowns), cached on device or read chunk by chunk.
"""

from __future__ import annotations

import dataclasses
import os
import zlib
from typing import Any

import jax
import ml_collections as mlc
import numpy as np

from common.core import checkpoint as checkpoint_lib
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
  if not config.adapt.train_source:
    raise ValueError(
        "this config adapts converted PyTorch weights: set "
        "--config.adapt.source_checkpoint=<dir written by "
        "common.convert.torch_to_flax> (see "
        "third_party_configs/tta_weights/README.md)")
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
  """A source model from converted PyTorch weights (see
  third_party_configs/tta_weights/README.md): architecture and classes come
  from the conversion's `meta.json`."""
  from common import models  # pylint: disable=g-import-not-at-top
  from common.convert import torch_to_flax  # pylint: disable=g-import-not-at-top
  path = config.adapt.source_checkpoint
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"config.adapt.source_checkpoint={path!r} does not exist; download "
        f"and convert the PyTorch weights first (python -m "
        f"common.convert.torch_to_flax, see third_party_configs/tta_weights)")
  variables = dict(torch_to_flax.load_converted(path))
  meta = torch_to_flax.load_metadata(path)
  params = variables.pop("params")
  num_classes = int(meta["num_classes"])
  model = models.get_model(meta["arch"], num_classes,
                           dtype=config.model.dtype,
                           **dict(meta.get("model_kwargs", {})))
  size = config.data.image_size or 0
  source = _open(config, config.adapt.clean_name, config.adapt.clean_split)
  shape = tuple(source.image_shape) if source.image_shape else (size, size, 3)
  return SourceModel(model=model, params=params, model_state=variables,
                     num_classes=num_classes, image_shape=shape,
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


class Stream:
  """A split as `[T, b, ...]` device chunks of at most `chunk_batches`.

  Small streams (digits_c, CIFAR-10-C) are read once and kept on device
  (`cache=True`); ImageNet-C streams (50,000 images at 224x224) are read and
  placed chunk by chunk each time they are iterated. The order is a
  permutation drawn from `(seed, salt)` (if `adapt.shuffle`; the salt is the
  corruption name for corrupted streams, the split for clean data), the same
  for every arm.
  """

  def __init__(self, config: mlc.ConfigDict, name: str, split: str,
               seed: int, mesh: jax.sharding.Mesh, *, chunk_batches: int = 0,
               cache: bool = True, known_only: bool = False, limit: int = 0,
               salt: str = ""):
    self.name = name
    self._salt = salt or f"{name}:{split}"
    self._config, self._split, self._seed = config, split, seed
    self._mesh, self._chunk = mesh, chunk_batches
    self._known_only, self._limit = known_only, limit
    self._cached = list(self._load()) if cache else None

  def _load(self):
    config = self._config
    source = _open(config, self.name, self._split)
    b = config.adapt.batch_size
    classes = tuple(config.data.classes)
    candidates = np.arange(len(source))
    if self._known_only and classes:  # small (digits) splits only
      labels = map_labels(source.get(candidates)["label"], classes)
      candidates = candidates[labels >= 0]
    if config.adapt.shuffle:
      rng = np.random.default_rng([self._seed, _stable_hash(self._salt)])
      candidates = candidates[rng.permutation(len(candidates))]
    if self._limit:
      candidates = candidates[:self._limit]
    t = len(candidates) // b
    if config.adapt.max_batches:
      t = min(t, config.adapt.max_batches)
    if t == 0:
      raise ValueError(f"adapt.batch_size={b} is larger than the "
                       f"{len(candidates)} usable images of {self.name} "
                       f"({self._split})")
    step = self._chunk or t
    for start in range(0, t, step):
      idx = candidates[start * b:min(start + step, t) * b]
      data = source.get(np.sort(idx))
      # Back to the shuffled order after the sorted (faster) read.
      rank = np.argsort(np.argsort(idx))
      images = data["image"][rank]
      labels = map_labels(data["label"][rank], classes)
      k = len(idx) // b
      yield (put_stream(images.reshape(k, b, *images.shape[1:]), self._mesh),
             labels.reshape(k, b))

  def chunks(self):
    return iter(self._cached) if self._cached is not None else self._load()


def _stable_hash(text: str) -> int:
  return zlib.crc32(text.encode())


def put_stream(images: np.ndarray, mesh: jax.sharding.Mesh) -> jax.Array:
  """Places `[T, b, ...]` on the mesh, batch axis split over `"data"`."""
  from common import adapt  # pylint: disable=g-import-not-at-top
  return jax.device_put(images, adapt.stream_sharding(mesh))

"""Test streams: a split as `[T, b, ...]` device batches in a seeded order.

The TTA protocol (`common.protocols.tta`) adapts on streams of unlabeled
batches: one corruption's test images, clean data, or the clean images a
method's init reads. A `Stream` yields chunks `(batches, labels)`:
`batches` is `{"image": uint8 [k, b, h, w, c]}` placed on the mesh with
the batch axis (1) split over `"data"`, `labels` int32 `[k, b]` on the
host, mapped to the source model's classes (-1 for open-set unknowns).
The remainder that does not fill a batch is dropped (batch statistics need
full batches). Small streams (digits_c, CIFAR-10-C) are read once and kept
on device; large ones (ImageNet-C) are read chunk by chunk each time.
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Iterator

import jax
import numpy as np

from common.core import sharding as sharding_lib

Chunk = tuple[dict[str, jax.Array], np.ndarray]


def map_labels(labels: np.ndarray, classes: tuple[int, ...]) -> np.ndarray:
  """Dataset labels -> source-model labels; -1 for classes it never saw."""
  if not classes:
    return labels.astype(np.int32)
  table = -np.ones(max(max(classes), int(labels.max())) + 1, np.int32)
  table[list(classes)] = np.arange(len(classes), dtype=np.int32)
  return table[labels]


def error_rate(preds: np.ndarray, labels: np.ndarray) -> float:
  """Error (%) over samples with a known label (`label >= 0`)."""
  preds, labels = np.asarray(preds).ravel(), np.asarray(labels).ravel()
  known = labels >= 0
  return float(100.0 * np.mean(preds[known] != labels[known]))


def stream_sharding(mesh: jax.sharding.Mesh) -> jax.sharding.NamedSharding:
  """`[T, b, ...]` streams: the batch axis (1) split over `"data"`."""
  return jax.sharding.NamedSharding(
      mesh, jax.sharding.PartitionSpec(None, sharding_lib.DATA_AXIS))


def _stable_hash(text: str) -> int:
  return zlib.crc32(text.encode())


@dataclasses.dataclass
class StreamSpec:
  """How a stream is read.

  Attributes:
    name: TFDS name, e.g. `digits_corrupted/gaussian_noise_5`.
    split: split name.
    batch_size: global batch size b.
    seed: the order is a permutation drawn from `(seed, salt)`.
    salt: the corruption name for corrupted streams, the split for clean
      data (the same order for every arm).
    data_dir: TFDS data dir ("" = default).
    image_size: host resize (0 = none).
    classes: the source model's classes (`config.data.classes`).
    shuffle: permute (else the split's order).
    max_batches: > 0 truncates the stream (smoke runs).
    chunk_batches: > 0 reads and places this many batches at a time.
    cache: keep the whole stream on device after the first read.
    known_only: drop the samples of classes the source model never saw.
    limit: > 0 keeps only the first `limit` candidates (after shuffling).
  """
  name: str
  split: str
  batch_size: int
  seed: int
  salt: str = ""
  data_dir: str = ""
  image_size: int = 0
  classes: tuple[int, ...] = ()
  shuffle: bool = True
  max_batches: int = 0
  chunk_batches: int = 0
  cache: bool = True
  known_only: bool = False
  limit: int = 0


class Stream:
  """A split as `[k, b, ...]` device chunks (see the module docstring)."""

  def __init__(self, spec: StreamSpec, mesh: jax.sharding.Mesh):
    self.spec, self._mesh = spec, mesh
    self.name = spec.name
    self._cached = list(self._load()) if spec.cache else None

  def _load(self) -> Iterator[Chunk]:
    from common.data import sources  # pylint: disable=g-import-not-at-top
    s = self.spec
    source = sources.open_split(s.name, s.split, s.data_dir or None,
                                image_size=s.image_size or None)
    b, classes = s.batch_size, tuple(s.classes)
    candidates = np.arange(len(source))
    if s.known_only and classes:  # small (digits) splits only
      labels = map_labels(source.get(candidates)["label"], classes)
      candidates = candidates[labels >= 0]
    if s.shuffle:
      rng = np.random.default_rng(
          [s.seed, _stable_hash(s.salt or f"{s.name}:{s.split}")])
      candidates = candidates[rng.permutation(len(candidates))]
    if s.limit:
      candidates = candidates[:s.limit]
    t = len(candidates) // b
    if s.max_batches:
      t = min(t, s.max_batches)
    if t == 0:
      raise ValueError(f"adapt.batch_size={b} is larger than the "
                       f"{len(candidates)} usable images of {s.name} "
                       f"({s.split})")
    step = s.chunk_batches or t
    for start in range(0, t, step):
      idx = candidates[start * b:min(start + step, t) * b]
      data = source.get(np.sort(idx))
      # Back to the shuffled order after the sorted (faster) read.
      rank = np.argsort(np.argsort(idx))
      images = data["image"][rank]
      labels = map_labels(data["label"][rank], classes)
      k = len(idx) // b
      images = jax.device_put(images.reshape(k, b, *images.shape[1:]),
                              stream_sharding(self._mesh))
      yield {"image": images}, labels.reshape(k, b)

  def chunks(self) -> Iterator[Chunk]:
    return iter(self._cached) if self._cached is not None else self._load()

  def stacked(self) -> Chunk:
    """The whole stream as one chunk (small streams: a method's init)."""
    parts = list(self.chunks())
    images = np.concatenate([np.asarray(p["image"]) for p, _ in parts])
    return ({"image": jax.device_put(images, stream_sharding(self._mesh))},
            np.concatenate([y for _, y in parts]))

"""A class subset of a data source, relabelled 0..k-1 (`config.data.classes`).

Open-set test-time adaptation trains the source model on some classes only
(e.g. digits 0-5) and later streams the others as unknowns. A config says
`data.classes = (0, 1, 2, 3, 4, 5)`; every split the harness opens then
keeps only those labels, relabelled by their position in the tuple, so a
model is built with `k` outputs and the rest of the pipeline is unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

# Records per read when the labels have to be read from disk.
_LABEL_READ_CHUNK = 4096


def check_classes(classes: Sequence[int], num_classes: int | None,
                  name: str) -> tuple[int, ...]:
  """Validates a class-id tuple against a dataset; returns it as ints.

  Args:
    classes: label ids to keep, in the order of their new labels.
    num_classes: the dataset's number of classes (None if unknown).
    name: dataset name, for messages.

  Returns:
    The ids as a tuple of Python ints.

  Raises:
    ValueError: ids that are not integers, repeated, or outside
      `0..num_classes-1`, or a dataset without a class label.
  """
  ids = []
  for c in classes:
    if isinstance(c, (bool, np.bool_)) or not isinstance(c, (int, np.integer)):
      raise ValueError(f"data.classes must hold integer label ids, got "
                       f"{c!r} in {tuple(classes)!r}")
    ids.append(int(c))
  if len(set(ids)) != len(ids):
    raise ValueError(f"data.classes={tuple(ids)} repeats a class id")
  if num_classes is None:
    raise ValueError(f"data.classes={tuple(ids)} needs a dataset with a "
                     f"ClassLabel label; {name!r} has none")
  bad = [c for c in ids if not 0 <= c < num_classes]
  if bad:
    raise ValueError(
        f"data.classes={tuple(ids)} has ids out of range for {name!r}: "
        f"{bad}; allowed ids are 0..{num_classes - 1} ({num_classes} "
        "classes)")
  return tuple(ids)


def all_labels(source: Any) -> np.ndarray:
  """Every label of a source, in order (reads the split if not in memory)."""
  n = len(source)
  if n == 0:
    return np.zeros((0,), np.int64)
  parts = [np.asarray(source.get(np.arange(i, min(i + _LABEL_READ_CHUNK, n)))
                      ["label"]) for i in range(0, n, _LABEL_READ_CHUNK)]
  return np.concatenate(parts).astype(np.int64)


IGNORE = 255   # the ignored value of per-pixel labels


def _dense_positions(source: Any, lut: np.ndarray) -> np.ndarray:
  """Examples holding a pixel whose new label is in 1..254, read by chunks
  (a dense split does not fit in memory as int64)."""
  n, keep = len(source), []
  for i in range(0, n, _LABEL_READ_CHUNK):
    labels = np.asarray(source.get(np.arange(i, min(i + _LABEL_READ_CHUNK,
                                                    n)))["label"])
    new = lut[labels.astype(np.int64)]
    keep.append(((new > 0) & (new != IGNORE)).reshape(len(new), -1).any(1))
  return np.flatnonzero(np.concatenate(keep)) if keep else np.zeros(0, int)


class ClassSubset:
  """The examples of `source` whose label is in `classes`, relabelled.

  Same interface as `common.data.sources.ArraySource` (`__len__`, `get`,
  `info`, `num_classes`, `image_shape`, `materialized`, `features`,
  `split`). Label `classes[j]` becomes `j`; positions are the kept examples
  in their original order.

  Per-pixel labels `[h, w]` (segmentation): pixel label `classes[j]` becomes
  `j`, pixels of the other classes become `IGNORE` (255, no loss), 255
  stays 255, and an example is kept when one of its pixels holds a kept
  class other than `classes[0]` (the background): few-shot base training
  with `classes = (0, *base)` drops the images of novel classes only, as
  RePRI's `StandardData` (mboudiaf/RePRI-for-Few-Shot-Segmentation).

  Attributes:
    classes: the kept original label ids.
    positions: int64 `[len(self)]` positions of the kept examples in the
      wrapped source.
  """

  def __init__(self, source: Any, classes: Sequence[int]):
    """Wraps `source`.

    Args:
      source: an `ArraySource`-like object with a `ClassLabel` label.
      classes: non-empty tuple of distinct ids in `0..num_classes-1`.
    """
    self.classes = check_classes(classes, source.num_classes,
                                 source.info.name)
    if not self.classes:
      raise ValueError("ClassSubset needs at least one class; use the source "
                       "itself to keep all classes")
    self._source = source
    self.dense = len(source) > 0 and np.ndim(
        source.get(np.zeros(1, np.int64))["label"]) > 1
    if self.dense:
      if len(self.classes) > IGNORE:
        raise ValueError(f"data.classes keeps {len(self.classes)} classes; "
                         f"per-pixel labels allow at most {IGNORE}")
      self._lut = np.full(max(source.num_classes, IGNORE + 1), IGNORE,
                          np.int32)
      self._lut[list(self.classes)] = np.arange(len(self.classes))
      self.positions = _dense_positions(source, self._lut)
    else:
      labels = all_labels(source)
      new_label = np.full(source.num_classes, -1, np.int64)
      new_label[list(self.classes)] = np.arange(len(self.classes))
      self.positions = np.nonzero(new_label[labels] >= 0)[0]
      self._labels = new_label[labels[self.positions]].astype(np.int32)
    self.info = dataclasses.replace(
        source.info, num_classes=len(self.classes),
        splits={source.split: len(self.positions)})
    self.features = source.features
    self.split = source.split

  def __len__(self) -> int:
    return len(self.positions)

  @property
  def materialized(self) -> bool:
    return self._source.materialized

  @property
  def num_classes(self) -> int:
    return self.info.num_classes

  @property
  def image_shape(self) -> tuple[int, int, int] | None:
    return self.info.image_shape

  def get(self, indices: np.ndarray) -> dict[str, np.ndarray]:
    """Returns `{"image": uint8 [b, h, w, c], "label": int32 [b] or
    [b, h, w]}`."""
    indices = np.asarray(indices, dtype=np.int64)
    batch = dict(self._source.get(self.positions[indices]))
    batch["label"] = (self._lut[np.asarray(batch["label"], np.int64)]
                      if self.dense else self._labels[indices])
    return batch


def select_classes(source: Any, classes: Sequence[int]) -> Any:
  """`ClassSubset(source, classes)`, or `source` itself when `classes` is
  empty (keep every class)."""
  if not tuple(classes):
    return source
  return ClassSubset(source, classes)

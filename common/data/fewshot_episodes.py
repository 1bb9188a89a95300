"""Few-shot segmentation folds and episodes (PASCAL-5i / COCO-20i style).

Written over generic arrays: `masks [N, H, W]` of integer class ids (0 =
background, 1..num_classes = objects, 255 = ignored pixels), so it works on
any segmentation dataset the harness opens. As the official RePRI code
(mboudiaf/RePRI-for-Few-Shot-Segmentation, `src/dataset/classes.py`,
`src/dataset/utils.py`, `src/dataset/dataset.py`):

* `fold_classes`: the classes are split in `num_folds` folds; fold i's
  novel classes are the i-th block of consecutive ids (PASCAL-5i: 1-5,
  6-10, ...) or, `interleaved` (COCO-20i, `use_split_coco`), every
  `num_folds`-th id from i+1; the base classes are the rest.
* `base_training_masks`: base training relabels the base classes 1..B in
  id order, keeps the background 0, and marks pixels of novel classes 255
  (ignored by the loss: `StandardData`), so the backbone never sees a
  novel class as a target, not even as background; images without a base
  class are dropped.
* `class_index`: which images hold a class, counting a class in an image
  only from `min_pixels` pixels on (official: 2 * 32 * 32 at 417 x 417).
* `sample_episodes`: `test_num` episodes; queries walk the eligible images
  in a seeded order (the official loader walks its list in order, cycling);
  each episode's class is drawn among the novel classes of its query, its
  K supports among the other images holding that class, without
  repetition. Deterministic per seed.
* `episode_masks`: binary masks of an episode's class (1), background (0)
  and the ignored pixels (255) of the image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

IGNORE = 255


def fold_classes(num_classes: int, num_folds: int, fold: int,
                 interleaved: bool = False
                 ) -> tuple[tuple[int, ...], tuple[int, ...]]:
  """`(base, novel)` class ids (1..num_classes) of one fold.

  Args:
    num_classes: object classes, background excluded (PASCAL 20, COCO 80).
    num_folds: folds (4 in PASCAL-5i and COCO-20i).
    fold: 0..num_folds-1.
    interleaved: COCO-20i's split (`use_split_coco`): novel ids fold+1,
      fold+1+num_folds, ...; else consecutive blocks.

  Raises:
    ValueError: folds that do not divide the classes, or a fold out of
      range.
  """
  if num_folds < 2 or num_classes % num_folds:
    raise ValueError(f"num_folds={num_folds} must be >= 2 and divide "
                     f"num_classes={num_classes}")
  if not 0 <= fold < num_folds:
    raise ValueError(f"fold={fold}; allowed 0..{num_folds - 1}")
  ids = range(1, num_classes + 1)
  if interleaved:
    novel = tuple(ids[fold::num_folds])
  else:
    n = num_classes // num_folds
    novel = tuple(ids[fold * n:(fold + 1) * n])
  base = tuple(c for c in ids if c not in novel)
  return base, novel


def class_index(masks: np.ndarray, classes: Sequence[int],
                min_pixels: int = 1) -> dict[int, np.ndarray]:
  """`{class: sorted image indices}` of images with >= `min_pixels` of it."""
  masks = np.asarray(masks)
  counts = np.stack([np.sum(masks == c, axis=(1, 2)) for c in classes], 1)
  return {int(c): np.flatnonzero(counts[:, j] >= min_pixels)
          for j, c in enumerate(classes)}


def base_training_masks(masks: np.ndarray, base: Sequence[int],
                        min_pixels: int = 1, novel_label: int = IGNORE
                        ) -> tuple[np.ndarray, np.ndarray]:
  """Masks for base training and the images to keep.

  Args:
    masks: `[N, H, W]` class ids.
    base: the base class ids, in the order of their new labels.
    min_pixels: a base class counts in an image from this many pixels.
    novel_label: what other classes become: 255 (ignored, the official
      `StandardData`) or 0 (background, as PANet-style pipelines).

  Returns:
    `(relabelled [N, H, W] uint8, keep [N] bool)`: base class `base[j]` ->
    j + 1, background 0, every other class -> `novel_label`, 255 -> 255;
    `keep` marks images holding a base class (>= `min_pixels`).
  """
  if novel_label not in (0, IGNORE):
    raise ValueError(f"novel_label={novel_label}; allowed 0 or {IGNORE}")
  masks = np.asarray(masks)
  lut = np.full(256, novel_label, np.uint8)
  lut[IGNORE] = IGNORE
  lut[0] = 0
  for j, c in enumerate(base):
    lut[c] = j + 1
  index = class_index(masks, base, min_pixels)
  keep = np.zeros(len(masks), bool)
  for rows in index.values():
    keep[rows] = True
  return lut[masks.astype(np.int64)], keep


class Episodes(NamedTuple):
  """Image indices of E episodes of K shots.

  Attributes:
    query: `[E]` query image index.
    support: `[E, K]` support image indices (distinct, never the query).
    cls: `[E]` the episode's class id (original numbering).
  """
  query: np.ndarray
  support: np.ndarray
  cls: np.ndarray


def sample_episodes(masks: np.ndarray, novel: Sequence[int], shots: int,
                    num_episodes: int, seed: int, min_pixels: int = 1
                    ) -> Episodes:
  """`num_episodes` episodes of `shots` supports on the `novel` classes.

  Raises:
    ValueError: no eligible query, or a class with fewer than `shots + 1`
      images (the query and K other supports).
  """
  if shots < 1 or num_episodes < 1:
    raise ValueError(f"shots={shots} and num_episodes={num_episodes} must "
                     "be >= 1")
  index = class_index(masks, novel, min_pixels)
  small = {c: len(v) for c, v in index.items() if 0 < len(v) < shots + 1}
  if small:
    raise ValueError(f"novel classes {small} (class: images) have fewer "
                     f"than shots + 1 = {shots + 1} images with >= "
                     f"{min_pixels} pixels")
  present = np.zeros((len(masks), len(novel)), bool)
  for j, c in enumerate(novel):
    present[index[int(c)], j] = True
  eligible = np.flatnonzero(present.any(1))
  if not len(eligible):
    raise ValueError(f"no image holds a novel class of {tuple(novel)} with "
                     f">= {min_pixels} pixels")
  rng = np.random.default_rng(seed)
  order = rng.permutation(eligible)
  query = order[np.arange(num_episodes) % len(order)]
  cls = np.empty(num_episodes, np.int64)
  support = np.empty((num_episodes, shots), np.int64)
  for e, q in enumerate(query):
    c = int(rng.choice(np.asarray(novel)[present[q]]))
    pool = index[c][index[c] != q]
    cls[e] = c
    support[e] = rng.choice(pool, size=shots, replace=False)
  return Episodes(query=query, support=support, cls=cls)


def episode_masks(masks: np.ndarray, images: np.ndarray,
                  cls: np.ndarray) -> np.ndarray:
  """Binary masks of class `cls` on `images`.

  Args:
    masks: `[N, H, W]` class ids.
    images: `[E]` or `[E, K]` image indices.
    cls: `[E]` class per episode.

  Returns:
    uint8 `[*images.shape, H, W]`: 1 where the class is, 255 where the
    image's pixel is ignored, 0 elsewhere (other classes are background).
  """
  m = np.asarray(masks)[images]
  c = np.asarray(cls).reshape(cls.shape + (1,) * (m.ndim - cls.ndim))
  out = (m == c).astype(np.uint8)
  out[m == IGNORE] = IGNORE
  return out

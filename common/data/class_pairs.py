"""Generator `digits_pairs`: class-balanced batches for zero-shot metric
learning on the embedded digits.

Zero-shot retrieval trains on some classes and evaluates on classes never
seen (the first and second halves of CUB-200 / CARS-196 in the ECAML
paper). Here the seen and unseen classes are two sets of scikit-learn's
8x8 digits (default 0-4 and 5-9), with the images of both TFDS splits.

A training batch of `b` rows is `b / images_per_class` distinct seen
classes (drawn with replacement only when there are fewer classes than
that) with `images_per_class` distinct images each, rows of one class
adjacent: the official ECAML lists are "65 classes x 2 images" (batch 130)
and its energy-confusion layer relies on the adjacency. The held-out batch
is every image of the unseen classes, in order, padded with masked rows.

Batch: `image` float32 `[b, s, s, 1]` in [-1, 1], `label` int32 `[b]` (the
digit), `mask` bool `[b]`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from common import config as config_lib
from common.data import gan_images
from common.data import procedural

DEFAULTS = dict(train_classes=(0, 1, 2, 3, 4), eval_classes=(5, 6, 7, 8, 9),
                images_per_class=2, image_size=8)
RULES = {"images_per_class": config_lib.at_least(2, integer=True),
         "image_size": config_lib.one_of(8, 16, 32)}


def _images(classes: tuple[int, ...], size: int):
  parts = [gan_images.real_images(s, size, classes) for s in ("train", "test")]
  return (np.concatenate([p[0] for p in parts]),
          np.concatenate([p[1] for p in parts]))


def class_table(labels: np.ndarray, classes: tuple[int, ...]
                ) -> tuple[np.ndarray, np.ndarray]:
  """`(index [C, max_count], count [C])`: row c lists the rows of class
  `classes[c]` (padded with 0)."""
  rows = [np.flatnonzero(labels == c) for c in classes]
  table = np.zeros((len(rows), max(len(r) for r in rows)), np.int32)
  for c, r in enumerate(rows):
    table[c, :len(r)] = r
  return table, np.array([len(r) for r in rows], np.int32)


def draw_class_batch(key: jax.Array, table: jax.Array, count: jax.Array,
                     num_classes: int, per_class: int) -> jax.Array:
  """`[num_classes * per_class]` rows: distinct classes (with replacement
  only if there are fewer), `per_class` distinct rows each, adjacent."""
  k_cls, k_img = jax.random.split(key)
  total = table.shape[0]
  cls = jax.random.choice(k_cls, total, (num_classes,),
                          replace=num_classes > total)
  valid = jnp.arange(table.shape[1])[None] < count[cls][:, None]
  scores = jnp.where(valid, jax.random.uniform(
      k_img, (num_classes, table.shape[1])), 2.0)
  pick = jnp.argsort(scores, axis=1)[:, :per_class]
  return jnp.take_along_axis(table[cls], pick, axis=1).reshape(-1)


@procedural.register_generator("digits_pairs")
def digits_pairs(config: Any) -> procedural.Generator:
  kw = procedural.settings(config, DEFAULTS, RULES)
  seen = tuple(int(c) for c in kw["train_classes"])
  unseen = tuple(int(c) for c in kw["eval_classes"])
  if set(seen) & set(unseen) or not seen or not unseen or any(
      not 0 <= c < 10 for c in seen + unseen):
    raise config_lib.ConfigError(
        f"config.data.kwargs train_classes={seen}, eval_classes={unseen}: "
        "allowed two non-empty, disjoint sets of digits 0..9")
  k = int(kw["images_per_class"])
  if config.train.batch_size % k:
    raise config_lib.ConfigError(
        f"train.batch_size={config.train.batch_size} is not a multiple of "
        f"config.data.kwargs.images_per_class={k}")
  x_seen, y_seen = _images(seen, int(kw["image_size"]))
  x_unseen, y_unseen = _images(unseen, int(kw["image_size"]))
  n_eval = len(y_unseen)
  if config.train.eval_batch_size < n_eval:
    raise config_lib.ConfigError(
        f"train.eval_batch_size={config.train.eval_batch_size} is smaller "
        f"than the {n_eval} unseen-class images, evaluated as one batch; "
        f"use >= {n_eval}")
  table, count = (jnp.asarray(a) for a in class_table(y_seen, seen))
  bank_x, bank_y = jnp.asarray(x_seen), jnp.asarray(y_seen)

  def sample(key: jax.Array, n: int) -> dict[str, jax.Array]:
    rows = draw_class_batch(key, table, count, max(n // k, 1), k)[:n]
    return {"image": bank_x[rows], "label": bank_y[rows],
            "mask": jnp.ones((n,), bool)}

  def eval_sample(key: jax.Array, n: int) -> dict[str, jax.Array]:
    del key
    pad = max(n - n_eval, 0)
    return {"image": jnp.asarray(np.pad(x_unseen, ((0, pad),) + ((0, 0),) * 3)),
            "label": jnp.asarray(np.pad(y_unseen, (0, pad))),
            "mask": jnp.asarray(np.arange(n_eval + pad) < n_eval)}

  return procedural.Generator(
      sample=sample, example=procedural.example_from(sample),
      num_classes=10, epoch_size=len(y_seen), eval_sample=eval_sample,
      eval_examples=n_eval)

"""Generator `mil_digits`: multiple-instance bags of embedded digits.

A bag is a variable number of instances with one label: positive when it
holds at least one instance of `positive_digit` (the MNIST-bags protocol of
Ilse et al. 2018, here on scikit-learn's 8x8 digits, which ship with the
package). It stands in for a whole-slide image's bag of patch features:
instances are feature vectors, bags vary in size, and only the bag label is
trained on, while the instance labels (is it the positive digit?) measure
localisation.

Every batch holds

* `bag`: the model input, a dict of
  `instances` float32 `[b, max_size, 64]` (pixels in [0, 1], flattened;
  zero rows past the bag's size) and `instance_mask` bool `[b, max_size]`;
* `label`: int32 `[b]` the bag label;
* `instance_label`: int32 `[b, max_size]` (1 = the positive digit);
* `mask`: bool `[b]` (held-out batch: false rows are padding).

The training bags are a fixed set of `num_train_bags` (the small-data,
overfitting regime of the paper) built from the digits training split with
the seed `bag_seed`, so every arm and seed trains on the same bags; a train
step draws `b` of them uniformly. The held-out bags are `num_test_bags`
built from the test split, evaluated as one batch. Half the bags are
positive (`positive_fraction`), holding 1 to `max_positives` positive
instances at random positions.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from common import config as config_lib
from common.data import gan_images
from common.data import procedural

DEFAULTS = dict(num_train_bags=200, num_test_bags=400, min_size=10,
                max_size=40, positive_digit=7, positive_fraction=0.5,
                max_positives=3, bag_seed=0)
RULES = {
    "num_train_bags": config_lib.at_least(2, integer=True),
    "num_test_bags": config_lib.at_least(2, integer=True),
    "min_size": config_lib.at_least(1, integer=True),
    "max_size": config_lib.at_least(1, integer=True),
    "positive_digit": config_lib.one_of(*range(10)),
    "positive_fraction": config_lib.between(0.0, 1.0),
    "max_positives": config_lib.at_least(1, integer=True),
    "bag_seed": config_lib.at_least(0, integer=True),
}


def make_bags(labels: np.ndarray, positive_digit: int, num_bags: int,
              min_size: int, max_size: int, positive_fraction: float,
              max_positives: int, rng: np.random.Generator
              ) -> dict[str, np.ndarray]:
  """Host bags as rows of instance indices.

  Args:
    labels: `[n]` digit label of every instance of the pool.
    positive_digit: the digit that makes a bag positive.
    num_bags, min_size, max_size: bag count and size range (inclusive).
    positive_fraction: probability that a bag is positive.
    max_positives: a positive bag holds 1..max_positives positive instances
      (at most its size).
    rng: numpy generator (the bags are a function of its seed).

  Returns:
    `index` int32 `[num_bags, max_size]` (0 past a bag's end),
    `instance_mask` bool `[num_bags, max_size]`, `label` int32 `[num_bags]`,
    `instance_label` int32 `[num_bags, max_size]`.
  """
  pos_pool = np.flatnonzero(labels == positive_digit)
  neg_pool = np.flatnonzero(labels != positive_digit)
  index = np.zeros((num_bags, max_size), np.int32)
  mask = np.zeros((num_bags, max_size), bool)
  inst = np.zeros((num_bags, max_size), np.int32)
  bag_label = (rng.random(num_bags) < positive_fraction).astype(np.int32)
  for i in range(num_bags):
    size = int(rng.integers(min_size, max_size + 1))
    n_pos = int(rng.integers(1, min(max_positives, size) + 1)) * bag_label[i]
    members = np.concatenate([rng.choice(pos_pool, n_pos),
                              rng.choice(neg_pool, size - n_pos)])
    is_pos = np.arange(size) < n_pos
    order = rng.permutation(size)
    index[i, :size], inst[i, :size] = members[order], is_pos[order]
    mask[i, :size] = True
  return {"index": index, "instance_mask": mask, "label": bag_label,
          "instance_label": inst}


def _gather(pool: jax.Array, bags: dict[str, jax.Array], rows: jax.Array,
            valid: jax.Array) -> dict[str, Any]:
  m = bags["instance_mask"][rows]
  x = pool[bags["index"][rows]] * m[..., None]
  return {"bag": {"instances": x, "instance_mask": m},
          "label": bags["label"][rows],
          "instance_label": bags["instance_label"][rows], "mask": valid}


def _pool(split: str) -> tuple[np.ndarray, np.ndarray]:
  images, labels = gan_images.real_images(split)   # [-1, 1]
  return ((images.reshape(len(images), -1) + 1.0) / 2.0), labels


@procedural.register_generator("mil_digits")
def mil_digits(config: Any) -> procedural.Generator:
  kw = procedural.settings(config, DEFAULTS, RULES)
  if kw["min_size"] > kw["max_size"]:
    raise config_lib.ConfigError(
        f"config.data.kwargs.min_size={kw['min_size']} exceeds max_size="
        f"{kw['max_size']}; allowed min_size <= max_size")
  n_test = int(kw["num_test_bags"])
  if config.train.eval_batch_size < n_test:
    raise config_lib.ConfigError(
        f"train.eval_batch_size={config.train.eval_batch_size} is smaller "
        f"than num_test_bags={n_test}; the held-out bags are evaluated as "
        f"one batch: use >= {n_test}")
  rng = np.random.default_rng(int(kw["bag_seed"]))
  build = lambda labels, n: make_bags(
      labels, int(kw["positive_digit"]), n, int(kw["min_size"]),
      int(kw["max_size"]), float(kw["positive_fraction"]),
      int(kw["max_positives"]), rng)
  train_x, train_y = _pool("train")
  test_x, test_y = _pool("test")
  n_train = int(kw["num_train_bags"])
  train_bags = jax.tree.map(jnp.asarray, build(train_y, n_train))
  test_bags = jax.tree.map(jnp.asarray, build(test_y, n_test))
  train_pool, test_pool = jnp.asarray(train_x), jnp.asarray(test_x)

  def sample(key: jax.Array, n: int) -> dict[str, Any]:
    rows = jax.random.randint(key, (n,), 0, n_train)
    return _gather(train_pool, train_bags, rows, jnp.ones((n,), bool))

  def eval_sample(key: jax.Array, n: int) -> dict[str, Any]:
    del key  # the held-out bags in order, padded with masked rows
    rows = jnp.arange(n)
    return _gather(test_pool, test_bags, jnp.minimum(rows, n_test - 1),
                   rows < n_test)

  return procedural.Generator(
      sample=sample, example=procedural.example_from(sample), num_classes=2,
      epoch_size=n_train, eval_sample=eval_sample, eval_examples=n_test)


# ------------------------------------------------------- real feature bags
FEATURE_DEFAULTS = dict(file="", max_instances=8192)
FEATURE_RULES = {"max_instances": config_lib.at_least(1, integer=True)}


def pack_bags(bags: list[np.ndarray], labels: list[int], splits: list[str]
              ) -> dict[str, np.ndarray]:
  """The `.npz` layout `mil_features` reads, from per-bag feature arrays.

  Args:
    bags: `[n_i, d]` instance features of each bag (e.g. the official AEM
      HDF5 file's `<slide>/feat`).
    labels: bag labels (the slide's `label` attribute).
    splits: "train" or "test" per bag (the official CAMELYON16 split puts
      slides whose name contains "test" in the test split).

  Returns:
    `features` float32 `[sum n_i, d]`, `offsets` int64 `[n_bags + 1]`,
    `label` int32 `[n_bags]`, `is_test` bool `[n_bags]`: save with
    `np.savez(path, **pack_bags(...))`.
  """
  sizes = np.array([len(b) for b in bags])
  return {"features": np.concatenate(bags).astype(np.float32),
          "offsets": np.concatenate([[0], np.cumsum(sizes)]),
          "label": np.asarray(labels, np.int32),
          "is_test": np.asarray([s == "test" for s in splits])}


def _feature_split(packed: dict[str, np.ndarray], test: bool):
  keep = np.flatnonzero(packed["is_test"] == test)
  starts, ends = packed["offsets"][keep], packed["offsets"][keep + 1]
  return {"start": jnp.asarray(starts), "size": jnp.asarray(ends - starts),
          "label": jnp.asarray(packed["label"][keep])}, len(keep)


@procedural.register_generator("mil_features")
def mil_features(config: Any) -> procedural.Generator:
  """Bags of precomputed instance features (whole-slide patch features).

  Reads `config.data.data_dir/<file>`, an `.npz` written with `pack_bags`.
  A bag of more than `max_instances` instances is cut to a random
  contiguous window of that many per draw (training) or to its first
  `max_instances` (held-out); the official code feeds whole bags one at a
  time, so set `max_instances` to the largest bag where memory allows.
  No instance labels: `instance_label` is all zero.
  """
  kw = procedural.settings(config, FEATURE_DEFAULTS, FEATURE_RULES)
  path = os.path.join(config.data.data_dir, kw["file"])
  if not kw["file"] or not os.path.isfile(path):
    raise FileNotFoundError(
        f"MIL feature bags {path!r} not found: write them with "
        "common.data.mil_bags.pack_bags (see experiments/aem/README.md) and "
        "set config.data.data_dir / config.data.kwargs.file")
  packed = dict(np.load(path))
  cap = int(kw["max_instances"])
  feats = jnp.asarray(packed["features"])
  train, n_train = _feature_split(packed, False)
  test, n_test = _feature_split(packed, True)
  if config.train.eval_batch_size < n_test:
    raise config_lib.ConfigError(
        f"train.eval_batch_size={config.train.eval_batch_size} is smaller "
        f"than the {n_test} held-out bags; use >= {n_test}")

  def gather(split, rows, offset, valid):
    pos = jnp.arange(cap)
    m = pos[None] < split["size"][rows, None]
    idx = split["start"][rows, None] + offset[:, None] + pos[None]
    x = feats[jnp.where(m, idx, 0)] * m[..., None]
    return {"bag": {"instances": x, "instance_mask": m},
            "label": split["label"][rows],
            "instance_label": jnp.zeros(m.shape, jnp.int32), "mask": valid}

  def sample(key, n):
    k_row, k_off = jax.random.split(key)
    rows = jax.random.randint(k_row, (n,), 0, n_train)
    spare = jnp.maximum(train["size"][rows] - cap, 0)
    offset = jnp.floor(jax.random.uniform(k_off, (n,)) * (spare + 1)
                       ).astype(train["start"].dtype)
    return gather(train, rows, offset, jnp.ones((n,), bool))

  def eval_sample(key, n):
    del key
    rows = jnp.arange(n)
    return gather(test, jnp.minimum(rows, n_test - 1),
                  jnp.zeros((n,), test["start"].dtype), rows < n_test)

  return procedural.Generator(
      sample=sample, example=procedural.example_from(sample),
      num_classes=int(packed["label"].max()) + 1, epoch_size=n_train,
      eval_sample=eval_sample, eval_examples=n_test)

"""Imbalanced binary tabular tasks as procedural sources, with k-fold splits.

Two generators (`config.data.source = "generator"`, input key "x",
`data.preprocess = "none"`):

* `imbalanced_binary`: scikit-learn's `make_classification` (two classes,
  one Gaussian cluster per class on a hypercube, `class_sep`, a
  `minority_fraction` of positives), optionally reduced to `pca_dim`
  principal components. The defaults are the "Random" dataset of the
  AnyLoss paper (arXiv:2405.14745; doheonhan/anyloss notebooks:
  `make_classification(n_samples=10000, weights=[0.9, 0.1],
  class_sep=1.2, n_features=5, n_informative=3, n_redundant=1,
  n_clusters_per_class=1, random_state=0)`, then PCA to 2 components).
* `breast_cancer_imbalanced`: the Wisconsin diagnostic breast cancer data
  that ships inside scikit-learn (`load_breast_cancer`, 569 x 30; 357
  benign, 212 malignant), malignant = label 1, with the malignant cases
  subsampled to `minority_ratio` x the benign count (the AnyLoss notebooks
  keep round(357 * 0.1) = 36 malignant: "Data is too balanced!!! We
  intentionally make it imbalanced.").

The table is fixed by `data_seed`; the run's `config.seed` picks the
held-out fold of a stratified `folds`-fold split (fold = seed mod folds),
so seeds 0..k-1 are the paper's k-fold cross-validation. Features are
standardised with the training folds' mean and std. Training batches are
drawn on device, uniformly with replacement from the training folds (a
pure function of the step's key: exact resume, same batch on 1 or N
devices; the paper's Keras `fit` shuffles epochs without replacement).
The held-out fold is returned whole, padded with masked rows, as one eval
batch, so `train.eval_batch_size` must be at least its size.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from common import config as config_lib
from common.data import procedural

_COMMON = dict(folds=10, data_seed=0)
_COMMON_RULES = {
    "folds": config_lib.at_least(2, integer=True),
    "data_seed": config_lib.at_least(0, integer=True),
}

IMBALANCED_DEFAULTS = dict(
    num_examples=10000, num_features=5, num_informative=3, num_redundant=1,
    minority_fraction=0.1, class_sep=1.2, flip_y=0.01, pca_dim=2, **_COMMON)
IMBALANCED_RULES = {
    "num_examples": config_lib.at_least(20, integer=True),
    "num_features": config_lib.at_least(1, integer=True),
    "num_informative": config_lib.at_least(1, integer=True),
    "num_redundant": config_lib.at_least(0, integer=True),
    "minority_fraction": config_lib.Rule(
        "a number in (0, 0.5]", lambda v: isinstance(v, (int, float))
        and 0 < v <= 0.5),
    "class_sep": config_lib.greater_than(0.0),
    "flip_y": config_lib.between(0.0, 1.0),
    "pca_dim": config_lib.at_least(0, integer=True),   # 0: no PCA
    **_COMMON_RULES,
}

BREAST_CANCER_DEFAULTS = dict(minority_ratio=0.1, **_COMMON)
BREAST_CANCER_RULES = {
    "minority_ratio": config_lib.Rule(
        "a number in (0, 212/357]", lambda v: isinstance(v, (int, float))
        and 0 < v <= 212 / 357),
    **_COMMON_RULES,
}


@functools.lru_cache(maxsize=8)
def imbalanced_table(num_examples: int, num_features: int,
                     num_informative: int, num_redundant: int,
                     minority_fraction: float, class_sep: float,
                     flip_y: float, pca_dim: int, data_seed: int
                     ) -> tuple[np.ndarray, np.ndarray]:
  """`(x [n, d] float64, y [n] int32)` of `make_classification` (+ PCA)."""
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  if num_informative + num_redundant > num_features:
    raise config_lib.ConfigError(
        f"imbalanced_binary: num_informative + num_redundant = "
        f"{num_informative + num_redundant} > num_features={num_features}")
  x, y = datasets.make_classification(
      n_samples=num_examples, n_classes=2, n_features=num_features,
      n_informative=num_informative, n_redundant=num_redundant,
      n_clusters_per_class=1,
      weights=[1.0 - minority_fraction, minority_fraction],
      class_sep=class_sep, flip_y=flip_y, random_state=data_seed)
  if pca_dim:
    if pca_dim > num_features:
      raise config_lib.ConfigError(
          f"imbalanced_binary: pca_dim={pca_dim} > num_features="
          f"{num_features}")
    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    x = centred @ vt[:pca_dim].T
  return x, y.astype(np.int32)


@functools.lru_cache(maxsize=8)
def breast_cancer_table(minority_ratio: float, data_seed: int
                        ) -> tuple[np.ndarray, np.ndarray]:
  """`(x [n, 30], y [n])`: all benign (0) + a random subset of malignant (1)."""
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  data = datasets.load_breast_cancer()
  y = 1 - data.target.astype(np.int32)     # sklearn: 0 = malignant
  benign, malignant = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
  keep = int(round(len(benign) * minority_ratio))
  rng = np.random.default_rng(data_seed)
  chosen = np.sort(rng.choice(malignant, size=keep, replace=False))
  rows = np.concatenate([benign, chosen])
  return data.data[rows].astype(np.float64), y[rows]


def stratified_folds(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
  """`[n]` fold ids: each class shuffled, then dealt out round-robin."""
  rng = np.random.default_rng(seed)
  fold = np.empty(len(labels), np.int32)
  offset = 0
  for c in np.unique(labels):
    members = rng.permutation(np.flatnonzero(labels == c))
    fold[members] = (offset + np.arange(len(members))) % folds
    offset += len(members)   # keeps fold sizes balanced across classes
  return fold


def split(x: np.ndarray, y: np.ndarray, folds: int, fold: int,
          seed: int) -> dict[str, np.ndarray]:
  """Train/test arrays of one fold, standardised by the training folds."""
  ids = stratified_folds(y, folds, seed)
  train, test = ids != fold, ids == fold
  mean, std = x[train].mean(axis=0), x[train].std(axis=0)
  std = np.where(std > 0, std, 1.0)

  def norm(a):
    return ((a - mean) / std).astype(np.float32)
  return {"x_train": norm(x[train]), "y_train": y[train],
          "x_test": norm(x[test]), "y_test": y[test]}


def table_generator(config: Any, x: np.ndarray, y: np.ndarray,
                    folds: int, data_seed: int) -> procedural.Generator:
  """A generator over fold `config.seed % folds` of the table `(x, y)`."""
  parts = split(x, y, folds, config.seed % folds, data_seed)
  return split_generator(config, parts, 2,
                         f"the held-out fold of {config.data.name!r}")


def split_generator(config: Any, parts: dict[str, np.ndarray],
                    num_classes: int, what: str) -> procedural.Generator:
  """Training rows of `parts` (`x_train`, `y_train`, `x_test`, `y_test`)
  drawn uniformly with replacement (a pure function of the step's key);
  the test rows as one eval batch, in order, padded with masked rows.
  `what` names the test rows in the error for a too-small eval batch."""
  n_test = len(parts["y_test"])
  if config.train.eval_batch_size < n_test:
    raise config_lib.ConfigError(
        f"train.eval_batch_size={config.train.eval_batch_size} is smaller "
        f"than {what} ({n_test} rows); it is evaluated as one batch: use "
        f">= {n_test}")
  x_train, y_train = jnp.asarray(parts["x_train"]), jnp.asarray(
      parts["y_train"])
  n_train = len(parts["y_train"])

  def sample(rng, n):
    idx = jax.random.randint(rng, (n,), 0, n_train)
    return {"x": x_train[idx], "label": y_train[idx],
            "mask": jnp.ones((n,), bool)}

  def eval_sample(rng, n):
    del rng
    pad = max(n - n_test, 0)
    return {"x": jnp.asarray(np.pad(parts["x_test"], ((0, pad), (0, 0)))),
            "label": jnp.asarray(np.pad(parts["y_test"], (0, pad))),
            "mask": jnp.asarray(np.arange(n_test + pad) < n_test)}

  return procedural.Generator(
      sample=sample, example=procedural.example_from(sample),
      num_classes=num_classes, epoch_size=n_train, eval_sample=eval_sample,
      eval_examples=n_test)


@procedural.register_generator("imbalanced_binary")
def imbalanced_binary(config: Any) -> procedural.Generator:
  kw = procedural.settings(config, IMBALANCED_DEFAULTS, IMBALANCED_RULES)
  x, y = imbalanced_table(
      kw["num_examples"], kw["num_features"], kw["num_informative"],
      kw["num_redundant"], float(kw["minority_fraction"]),
      float(kw["class_sep"]), float(kw["flip_y"]), kw["pca_dim"],
      kw["data_seed"])
  return table_generator(config, x, y, kw["folds"], kw["data_seed"])


@procedural.register_generator("breast_cancer_imbalanced")
def breast_cancer_imbalanced(config: Any) -> procedural.Generator:
  kw = procedural.settings(config, BREAST_CANCER_DEFAULTS,
                           BREAST_CANCER_RULES)
  x, y = breast_cancer_table(float(kw["minority_ratio"]), kw["data_seed"])
  return table_generator(config, x, y, kw["folds"], kw["data_seed"])


# ------------------------------------------------- tables for tabular SSL
# Generator `tabular_ssl` (T-JEPA, experiments/t_jepa): a multi-class table
# split once into train / test by `data_seed`, features standardised by the
# training rows, the numerical columns first and then `num_categorical`
# categorical columns as integer codes (floats in `x`). Tables:
#   generated      `make_classification` (`num_examples`, `num_features`,
#                  `num_informative`, `num_redundant`, `num_classes`,
#                  `class_sep`, `flip_y`); its last `num_categorical`
#                  columns are cut into `cat_bins` quantile bins (codes).
#   breast_cancer  sklearn's bundled 569 x 30 table (2 classes).
#   wine           sklearn's bundled 178 x 13 table (3 classes).
#   digits         sklearn's bundled 8x8 digits as a 1797 x 64 table.
#   npz            a full-scale table `<data.data_dir>/<path>` (`x_num [n,
#                  Dn]`, `x_cat [n, Dc]` int codes, `y [n]` int), e.g. the
#                  T-JEPA benchmarks converted as third_party_configs/t_jepa/
#                  describes; a missing file is a one-line error.
# `tabular_ssl_parts(config)` returns the arrays (for evaluators) and
# `tabular_ssl_schema(kwargs)` the column layout (for model configs).

SSL_TABLES = ("generated", "breast_cancer", "wine", "digits", "npz")
SSL_DEFAULTS = dict(
    table="generated", num_examples=6000, num_features=30, num_informative=8,
    num_redundant=10, num_classes=2, class_sep=1.0, flip_y=0.01,
    num_categorical=0, cat_bins=4, test_fraction=0.2, data_seed=0,
    path="")
SSL_RULES = {
    "table": config_lib.one_of(*SSL_TABLES),
    "num_examples": config_lib.at_least(20, integer=True),
    "num_features": config_lib.at_least(2, integer=True),
    "num_informative": config_lib.at_least(1, integer=True),
    "num_redundant": config_lib.at_least(0, integer=True),
    "num_classes": config_lib.at_least(2, integer=True),
    "class_sep": config_lib.greater_than(0.0),
    "flip_y": config_lib.between(0.0, 1.0),
    "num_categorical": config_lib.at_least(0, integer=True),
    "cat_bins": config_lib.at_least(2, integer=True),
    "test_fraction": config_lib.Rule(
        "a number in (0, 1)", lambda v: isinstance(v, (int, float))
        and 0 < v < 1),
    "data_seed": config_lib.at_least(0, integer=True),
}


@functools.lru_cache(maxsize=8)
def ssl_table(table: str, num_examples: int, num_features: int,
              num_informative: int, num_redundant: int, num_classes: int,
              class_sep: float, flip_y: float, num_categorical: int,
              cat_bins: int, data_seed: int, path: str = ""
              ) -> tuple[np.ndarray, np.ndarray, int]:
  """`(x [n, D] float64, y [n] int32, num_categorical)` of one table."""
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  if table == "npz":
    if not os.path.isfile(path):
      raise FileNotFoundError(
          f"tabular_ssl: table 'npz' needs {path!r} (data.data_dir + "
          "data.kwargs.path) with x_num, x_cat, y; see "
          "third_party_configs/t_jepa/README.md")
    with np.load(path) as f:
      x_num, x_cat, y = f["x_num"], f["x_cat"], f["y"]
    x = np.concatenate([x_num.astype(np.float64),
                        x_cat.reshape(len(y), -1).astype(np.float64)], 1)
    return x, y.astype(np.int32), x_cat.reshape(len(y), -1).shape[1]
  if table != "generated":
    loader = {"breast_cancer": datasets.load_breast_cancer,
              "wine": datasets.load_wine, "digits": datasets.load_digits}
    data = loader[table]()
    return data.data.astype(np.float64), data.target.astype(np.int32), 0
  if num_informative + num_redundant > num_features:
    raise config_lib.ConfigError(
        f"tabular_ssl: num_informative + num_redundant = "
        f"{num_informative + num_redundant} > num_features={num_features}")
  if num_categorical > num_features - 1:
    raise config_lib.ConfigError(
        f"tabular_ssl: num_categorical={num_categorical}; allowed at most "
        f"num_features - 1 = {num_features - 1}")
  x, y = datasets.make_classification(
      n_samples=num_examples, n_features=num_features,
      n_informative=num_informative, n_redundant=num_redundant,
      n_classes=num_classes, class_sep=class_sep, flip_y=flip_y,
      random_state=data_seed)
  for j in range(num_features - num_categorical, num_features):
    edges = np.quantile(x[:, j], np.linspace(0, 1, cat_bins + 1)[1:-1])
    x[:, j] = np.searchsorted(edges, x[:, j])
  return x, y.astype(np.int32), num_categorical


def tabular_ssl_schema(kwargs: dict[str, Any], data_dir: str = ""
                       ) -> dict[str, Any]:
  """`{num_features, cat_cardinalities, num_classes}` of a `tabular_ssl`
  table (settings as `config.data.kwargs`), for the model's config."""
  kw = {**SSL_DEFAULTS, **dict(kwargs)}
  x, y, n_cat = _table_of({**kw, "path": _ssl_path(kw, data_dir)})
  return {"num_features": x.shape[1],
          "cat_cardinalities": _cardinalities(x, n_cat),
          "num_classes": int(y.max()) + 1}


def _table_of(kw: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, int]:
  return ssl_table(kw["table"], int(kw["num_examples"]),
                   int(kw["num_features"]), int(kw["num_informative"]),
                   int(kw["num_redundant"]), int(kw["num_classes"]),
                   float(kw["class_sep"]), float(kw["flip_y"]),
                   int(kw["num_categorical"]), int(kw["cat_bins"]),
                   int(kw["data_seed"]), kw["path"])


def _ssl_path(kw: dict[str, Any], data_dir: str) -> str:
  return os.path.join(data_dir or "", kw["path"]) if kw["table"] == "npz" \
      else ""


def _cardinalities(x: np.ndarray, n_cat: int) -> tuple[int, ...]:
  return tuple(int(x[:, j].max()) + 1
               for j in range(x.shape[1] - n_cat, x.shape[1]))


def tabular_ssl_parts(config: Any) -> dict[str, Any]:
  """Train/test arrays of the run's `tabular_ssl` table: `x_train`,
  `y_train`, `x_test`, `y_test` (float32 / int32), `num_categorical`,
  `cat_cardinalities`, `num_classes`."""
  kw = procedural.settings(config, SSL_DEFAULTS, SSL_RULES)
  kw["path"] = _ssl_path(kw, config.data.get("data_dir", ""))
  return _ssl_split(tuple(sorted(kw.items())))


@functools.lru_cache(maxsize=8)
def _ssl_split(items: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
  kw = dict(items)
  x, y, n_cat = _table_of(kw)
  rng = np.random.default_rng(kw["data_seed"])
  test = np.zeros(len(y), bool)
  for c in np.unique(y):      # stratified hold-out
    members = rng.permutation(np.flatnonzero(y == c))
    test[members[:int(round(len(members) * kw["test_fraction"]))]] = True
  num = x.shape[1] - n_cat
  mean, std = x[~test, :num].mean(0), x[~test, :num].std(0)
  std = np.where(std > 0, std, 1.0)
  x = x.copy()
  x[:, :num] = (x[:, :num] - mean) / std
  return {"x_train": x[~test].astype(np.float32), "y_train": y[~test],
          "x_test": x[test].astype(np.float32), "y_test": y[test],
          "num_categorical": n_cat,
          "cat_cardinalities": _cardinalities(x, n_cat),
          "num_classes": int(y.max()) + 1}


@procedural.register_generator("tabular_ssl")
def tabular_ssl(config: Any) -> procedural.Generator:
  """Training rows drawn uniformly with replacement (a pure function of the
  step's key); the test split as one padded eval batch."""
  parts = tabular_ssl_parts(config)
  return split_generator(config, parts, parts["num_classes"],
                         "the test split of the tabular_ssl table")

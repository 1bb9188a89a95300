"""Few-label probes of frozen embeddings vs raw features (evaluator
`few_label_probe`), for tabular self-supervision (T-JEPA).

On a `tabular_ssl` table (`common/data/tabular.py`): for each labelled
fraction f of the training split (a stratified subset, at least one row per
class, drawn with `config.seed`), the ridge probe of `linear_probe.py` is
fitted on

* `raw`: the raw features (categorical columns one-hot), and
* `emb`: the method's frozen embedding (`predict` output "features"; for
  T-JEPA the target encoder's flattened tokens),

with its ridge chosen per fit by closed-form leave-one-out accuracy on the
labelled rows (`linear_probe.ridge_probe_loo`), and scored on the test
split. Metrics: `raw_acc_<pct>`, `emb_acc_<pct>` (%), `gain_<pct>` (emb -
raw), and the collapse measures of the test embeddings: `emb_std_mean`,
`emb_std_min` (per-dimension std over examples) and `emb_rank` (effective
rank, exp of the entropy of the normalised singular values).

Config (`config.eval`): `label_fractions` (default (0.01, 0.1, 1.0)).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from common.data import tabular
from common.eval import evaluators
from common.eval import linear_probe

_CHUNK = 1024


def fraction_name(fraction: float) -> str:
  """0.01 -> "1", 0.1 -> "10", 1.0 -> "100", 0.005 -> "0p5"."""
  return f"{100.0 * fraction:g}".replace(".", "p")


def labelled_subset(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
  """Sorted row ids: `max(1, round(fraction n_c))` random rows per class."""
  if not 0 < fraction <= 1:
    raise ValueError(f"config.eval.label_fractions has {fraction}; allowed "
                     "numbers in (0, 1]")
  rng = np.random.default_rng(seed)
  ids = [rng.permutation(np.flatnonzero(y == c))[
      :max(1, int(round(fraction * np.sum(y == c))))] for c in np.unique(y)]
  return np.sort(np.concatenate(ids))


def one_hot_raw(x: np.ndarray, cards: tuple[int, ...]) -> np.ndarray:
  """Numerical columns as they are, the last `len(cards)` one-hot."""
  n_num = x.shape[1] - len(cards)
  cols = [x[:, :n_num]] + [np.eye(c)[x[:, n_num + i].astype(int)]
                           for i, c in enumerate(cards)]
  return np.concatenate(cols, 1)


def effective_rank(x: np.ndarray) -> float:
  """exp(entropy of the normalised singular values of centred `x`)."""
  s = np.linalg.svd(x - x.mean(0), compute_uv=False)
  p = s / max(s.sum(), 1e-12)
  p = p[p > 0]
  return float(np.exp(-np.sum(p * np.log(p))))


def probe_scores(raw_train, raw_test, emb_train, emb_test, y_train, y_test,
                 num_classes: int, fractions, seed: int) -> dict[str, float]:
  """The probe accuracies of both inputs at each labelled fraction."""
  out = {}
  for f in fractions:
    idx = labelled_subset(y_train, float(f), seed)
    name = fraction_name(float(f))
    for tag, tr, te in (("raw", raw_train, raw_test),
                        ("emb", emb_train, emb_test)):
      lam, _ = linear_probe.ridge_probe_loo(tr[idx], y_train[idx],
                                            num_classes)
      out[f"{tag}_acc_{name}"] = linear_probe.probe_accuracy(
          tr[idx], y_train[idx], te, y_test, num_classes, lam)
    out[f"gain_{name}"] = out[f"emb_acc_{name}"] - out[f"raw_acc_{name}"]
    out[f"labels_{name}"] = float(len(idx))
  return out


def _embed(setup: Any, state: Any, x: np.ndarray) -> np.ndarray:
  key = setup.config.data.input_key
  return np.concatenate([
      evaluators.predict(setup, state, {key: x[i:i + _CHUNK]},
                         ("features",))["features"].reshape(
                             len(x[i:i + _CHUNK]), -1)
      for i in range(0, len(x), _CHUNK)])


@evaluators.register_evaluator("few_label_probe")
def evaluate(setup: Any, state: Any) -> dict[str, float]:
  """Probe accuracies and embedding-collapse measures (see module doc)."""
  config = setup.config
  if config.data.name != "tabular_ssl":
    raise ValueError(f"evaluator few_label_probe reads a 'tabular_ssl' "
                     f"table; config.data.name={config.data.name!r}")
  fractions = tuple(config.eval.get("label_fractions", (0.01, 0.1, 1.0)))
  parts = tabular.tabular_ssl_parts(config)
  cards = parts["cat_cardinalities"]
  emb_train = _embed(setup, state, parts["x_train"])
  emb_test = _embed(setup, state, parts["x_test"])
  out = probe_scores(one_hot_raw(parts["x_train"], cards),
                     one_hot_raw(parts["x_test"], cards), emb_train,
                     emb_test, parts["y_train"], parts["y_test"],
                     parts["num_classes"], fractions, int(config.seed))
  std = emb_test.astype(np.float64).std(0)
  out.update(emb_std_mean=float(std.mean()), emb_std_min=float(std.min()),
             emb_rank=effective_rank(emb_test.astype(np.float64)),
             emb_dim=float(emb_test.shape[1]))
  return out

"""Hungarian-matched clustering accuracy on All / Old / New classes.

The category-discovery papers (GCD arXiv:2201.02609, SimGCD
arXiv:2211.11727, LegoGCD, Happy) score cluster assignments by the best
one-to-one map from predicted clusters to classes (Hungarian algorithm,
scipy's `linear_sum_assignment`), then split the accuracy by whether an
example's *true* class is old (seen with labels) or new:

  v2   one map over all examples; All / Old / New accuracies under it
       (SimGCD `util/cluster_and_log_utils.py:split_cluster_acc_v2`, the
       protocol the papers report).
  v2b  the same map; per-class accuracies averaged within each group
       (`split_cluster_acc_v2_balanced`).
  v1   separate maps on the old and on the new examples; All is their
       example-weighted mean (GCD's `split_cluster_acc_v1`).

Evaluator `category_discovery` reports `all_acc`, `old_acc`, `new_acc` (v2,
in [0, 1]) plus the v1 and v2b variants, on the eval split of a config
with a `data.category_discovery` section (old classes are the labels
`< num_old`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import optimize

from common.eval import evaluators


def _counts(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
  """int64 `[D, D]`: `w[p, t]` = examples predicted p with true class t."""
  d = int(max(y_pred.max(), y_true.max())) + 1
  w = np.zeros((d, d), np.int64)
  np.add.at(w, (y_pred, y_true), 1)
  return w


def hungarian_map(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
  """int64 `[D]`: `m[p]` is the class cluster p is matched to.

  Maximises the number of examples whose matched cluster is their class.
  """
  w = _counts(y_true, y_pred)
  rows, cols = optimize.linear_sum_assignment(w, maximize=True)
  m = np.zeros(len(w), np.int64)
  m[rows] = cols
  return m


def cluster_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
  """Accuracy under the best one-to-one cluster -> class map."""
  y_true, y_pred = np.asarray(y_true, int), np.asarray(y_pred, int)
  if not len(y_true):
    return float("nan")
  return float(np.mean(hungarian_map(y_true, y_pred)[y_pred] == y_true))


def split_accuracies(y_true: np.ndarray, y_pred: np.ndarray,
                     is_old: np.ndarray, protocol: str = "v2"
                     ) -> tuple[float, float, float]:
  """`(all, old, new)` accuracies in [0, 1] (nan for an empty group).

  Args:
    y_true: int `[n]` true classes.
    y_pred: int `[n]` predicted clusters (any ids).
    is_old: bool `[n]`, True where the true class is an old class.
    protocol: "v2", "v2b" or "v1" (module docstring).
  """
  y_true, y_pred = np.asarray(y_true, int), np.asarray(y_pred, int)
  is_old = np.asarray(is_old, bool)
  if protocol == "v1":
    old = cluster_accuracy(y_true[is_old], y_pred[is_old])
    new = cluster_accuracy(y_true[~is_old], y_pred[~is_old])
    frac = is_old.mean()
    parts = [(frac, old), (1 - frac, new)]
    return (float(sum(f * a for f, a in parts if f > 0)), old, new)
  if protocol not in ("v2", "v2b"):
    raise ValueError(f"protocol={protocol!r}; allowed 'v1', 'v2', 'v2b'")
  correct = hungarian_map(y_true, y_pred)[y_pred] == y_true

  def mean(sel):
    if not sel.any():
      return float("nan")
    if protocol == "v2":
      return float(correct[sel].mean())
    return float(np.mean([correct[sel & (y_true == c)].mean()
                          for c in np.unique(y_true[sel])]))

  return mean(np.ones_like(is_old)), mean(is_old), mean(~is_old)


def num_old_classes(config: Any) -> int:
  """Old classes of a config's `data.category_discovery` section."""
  section = config.data.get("category_discovery")
  if section is None or section.kind == "none":
    raise ValueError("evaluator 'category_discovery' needs "
                     "config.data.category_discovery with kind 'gcd'")
  return len(tuple(section.old_classes)) or int(section.num_old)


def report(y_true: np.ndarray, y_pred: np.ndarray,
           is_old: np.ndarray) -> dict[str, float]:
  """`all_acc`, `old_acc`, `new_acc` (v2) and the v1 / v2b variants."""
  out = {}
  for protocol, suffix in (("v2", ""), ("v1", "_v1"), ("v2b", "_v2b")):
    acc = split_accuracies(y_true, y_pred, is_old, protocol)
    out.update({f"{g}_acc{suffix}": a for g, a in zip(("all", "old", "new"),
                                                      acc)})
  return out


@evaluators.register_evaluator("category_discovery")
def evaluate(setup: Any, state: Any) -> dict[str, float]:
  """Hungarian All / Old / New accuracy of the argmax of the logits."""
  logits, labels, mask = evaluators.eval_arrays(setup, state)
  labels, pred = labels[mask], logits[mask].argmax(-1)
  return report(labels, pred, labels < num_old_classes(setup.config))

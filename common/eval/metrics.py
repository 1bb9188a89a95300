"""Host-side classification metrics on a full evaluation set.

The harness concatenates logits and labels over the eval set and calls these
numpy functions once. Every function takes `[n, C]` scores, `[n]` int
labels and an optional boolean `[n]` mask whose False rows (e.g. batch
padding) are dropped before anything is computed; labels of dropped rows are
never read. Computation is in float64. An empty selection gives NaN.

Definitions and their relation to the official PS-KD code
(lgcnsai/PS-KD-Pytorch, `utils/metric.py`, `metric_ece_aurc_eaurc`, called
from `main.py` on softmax outputs with `bin_size=0.1`):

* ECE (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017),
  in %: confidence = max probability, prediction = argmax; `num_bins`
  equal-width bins over (0, 1], right-closed, bin m = ((m-1)/M, m/M];
  `ECE = 100 * sum_m |B_m| / n * |acc(B_m) - conf(B_m)|`. The official code
  uses the same right-closed bins with `bin_size=0.1`, i.e. 10 bins, which
  is our `ece_10`; we default to the 15 bins of Guo et al. for `ece`. Its
  edges come from `np.arange(0.1, 1.1, 0.1)` and `upper - 0.1`, so they
  sit a few ulps off k/10 (a confidence within ~1e-16 of an edge can land
  in a neighbouring bin, or, in 1-ulp gaps, in none); ours are exact
  (`np.linspace`). A confidence of exactly 0 (impossible for a max
  probability) is dropped there and put in the first bin here.
* AURC / E-AURC (Geifman et al., "Bias-Reduced Uncertainty Estimation for
  Deep Neural Classifiers", ICLR 2019), x1000 as in the official code and
  the PS-KD paper: sort by confidence (max probability), descending;
  `risk(k)` = errors among the k most confident / k; AURC = mean over
  k = 1..n. E-AURC = AURC - AURC of an oracle ranking every error last,
  `(1/n) * sum_{j=1..r} j / (n - r + j)` for r errors (the official
  `opt_aurc`). Ties: the official code orders tied confidences by
  `np.argsort` (not a stable sort), i.e. arbitrarily. Here each member of a
  tied group counts the group's mean error, which is the official value
  averaged over every ordering of the ties: deterministic, independent of
  the dataset order, and identical to the official value without ties.
* Error rates are in %, NLL is in nats. The official code also breaks on
  numpy >= 1.24 (`np.float`), one more reason not to call it.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def _select(scores: ArrayLike, labels: ArrayLike,
            mask: ArrayLike | None) -> tuple[np.ndarray, np.ndarray]:
  """Validates and masks inputs: float64 `[m, C]` scores and int `[m]`."""
  scores = np.asarray(scores, dtype=np.float64)
  labels = np.asarray(labels)
  if scores.ndim != 2:
    raise ValueError(f"Expected [n, C] scores, got shape {scores.shape}.")
  if labels.shape != scores.shape[:1]:
    raise ValueError(
        f"Expected [{scores.shape[0]}] labels, got shape {labels.shape}.")
  if mask is not None:
    mask = np.asarray(mask)
    if mask.dtype != bool or mask.shape != labels.shape:
      raise ValueError(f"Expected a boolean [{labels.shape[0]}] mask, got "
                       f"{mask.dtype} {mask.shape}.")
    scores, labels = scores[mask], labels[mask]
  if labels.size and not np.issubdtype(labels.dtype, np.integer):
    raise ValueError(f"Labels must be integers, got {labels.dtype}.")
  if labels.size and (labels.min() < 0 or labels.max() >= scores.shape[1]):
    raise ValueError(f"Labels must lie in [0, {scores.shape[1]}).")
  return scores, labels.astype(np.int64)


def log_softmax(logits: ArrayLike) -> np.ndarray:
  """Stable float64 log-softmax over the last axis of `[n, C]` logits."""
  logits = np.asarray(logits, dtype=np.float64)
  shifted = logits - np.max(logits, axis=-1, keepdims=True)
  return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def softmax(logits: ArrayLike) -> np.ndarray:
  """Float64 softmax over the last axis: `[n, C]` logits -> probabilities."""
  return np.exp(log_softmax(logits))


def topk_error(scores: ArrayLike, labels: ArrayLike, k: int,
               mask: ArrayLike | None = None) -> float:
  """Top-k error in %.

  Any order-preserving scores work (logits or probabilities). Ties rank
  the lower class index first, as `np.argmax` does; with `C <= k` classes
  the error is 0.

  Args:
    scores: `[n, C]` logits or probabilities.
    labels: `[n]` int labels.
    k: how many top classes count as a hit.
    mask: optional boolean `[n]`, False rows excluded.

  Returns:
    `100 * fraction of rows whose label is not among the top k`.
  """
  scores, labels = _select(scores, labels, mask)
  if not labels.size:
    return float("nan")
  top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
  hit = np.any(top == labels[:, None], axis=1)
  return float(100.0 * np.mean(~hit))


def error_rate(scores: ArrayLike, labels: ArrayLike,
               mask: ArrayLike | None = None) -> float:
  """Top-1 error in % of `[n, C]` logits or probabilities; see `topk_error`."""
  return topk_error(scores, labels, 1, mask)


def top5_error(scores: ArrayLike, labels: ArrayLike,
               mask: ArrayLike | None = None) -> float:
  """Top-5 error in % of `[n, C]` logits or probabilities."""
  return topk_error(scores, labels, 5, mask)


def nll_from_logits(logits: ArrayLike, labels: ArrayLike,
                    mask: ArrayLike | None = None) -> float:
  """Mean negative log-likelihood (nats) from `[n, C]` logits, stably."""
  logits, labels = _select(logits, labels, mask)
  if not labels.size:
    return float("nan")
  log_probs = log_softmax(logits)
  return float(-np.mean(log_probs[np.arange(labels.size), labels]))


def nll(probs: ArrayLike, labels: ArrayLike,
        mask: ArrayLike | None = None) -> float:
  """Mean negative log-likelihood (nats) from `[n, C]` probabilities.

  A true-class probability of 0 is clipped to the smallest normal float64,
  capping its term at ~708 instead of returning inf. Prefer
  `nll_from_logits` when logits are at hand.
  """
  probs, labels = _select(probs, labels, mask)
  if not labels.size:
    return float("nan")
  p_true = probs[np.arange(labels.size), labels]
  return float(-np.mean(np.log(np.maximum(p_true, np.finfo(np.float64).tiny))))


def ece(probs: ArrayLike, labels: ArrayLike, num_bins: int = 15,
        mask: ArrayLike | None = None) -> float:
  """Expected calibration error in %, right-closed equal-width bins.

  Args:
    probs: `[n, C]` probabilities.
    labels: `[n]` int labels.
    num_bins: number of bins over (0, 1]; bin m is ((m-1)/M, m/M].
    mask: optional boolean `[n]`, False rows excluded.

  Returns:
    `100 * sum_m |sum_{i in B_m} (correct_i - conf_i)| / n`.
  """
  probs, labels = _select(probs, labels, mask)
  if not labels.size:
    return float("nan")
  conf = np.max(probs, axis=1)
  correct = (np.argmax(probs, axis=1) == labels).astype(np.float64)
  edges = np.linspace(0.0, 1.0, num_bins + 1)
  # side="left" makes a confidence equal to an edge belong to the bin it
  # closes; clipping keeps 0 (and round-off above 1) in the end bins.
  bins = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0,
                 num_bins - 1)
  gap = np.bincount(bins, weights=correct - conf, minlength=num_bins)
  return float(100.0 * np.sum(np.abs(gap)) / labels.size)


def risk_coverage_curve(probs: ArrayLike, labels: ArrayLike,
                        mask: ArrayLike | None = None) -> np.ndarray:
  """Selective risk at every coverage, most confident examples first.

  Args:
    probs: `[n, C]` probabilities.
    labels: `[n]` int labels.
    mask: optional boolean `[n]`, False rows excluded.

  Returns:
    `[m]` float64 with `m` the kept rows; entry `k - 1` is the (expected,
    over orderings of tied confidences) error rate among the `k` most
    confident examples.
  """
  probs, labels = _select(probs, labels, mask)
  conf = np.max(probs, axis=1)
  errors = (np.argmax(probs, axis=1) != labels).astype(np.float64)
  order = np.argsort(-conf, kind="stable")
  conf, errors = conf[order], errors[order]
  # Replace each error by the mean over its tie group (see module docstring).
  _, group, counts = np.unique(-conf, return_inverse=True, return_counts=True)
  errors = (np.bincount(group, weights=errors) / counts)[group]
  return np.cumsum(errors) / np.arange(1, errors.size + 1)


def _oracle_aurc(num_examples: int, num_errors: int) -> float:
  """AURC (unscaled) when all `num_errors` errors are ranked last."""
  errors = np.zeros(num_examples)
  errors[num_examples - num_errors:] = 1.0
  return float(np.mean(np.cumsum(errors) / np.arange(1, num_examples + 1)))


def aurc(probs: ArrayLike, labels: ArrayLike,
         mask: ArrayLike | None = None) -> float:
  """Area under the risk-coverage curve x1000 (PS-KD's scale)."""
  curve = risk_coverage_curve(probs, labels, mask)
  if not curve.size:
    return float("nan")
  return float(1000.0 * np.mean(curve))


def eaurc(probs: ArrayLike, labels: ArrayLike,
          mask: ArrayLike | None = None) -> float:
  """Excess AURC x1000: AURC minus the oracle AURC with the same errors."""
  probs, labels = _select(probs, labels, mask)
  if not labels.size:
    return float("nan")
  num_errors = int(np.sum(np.argmax(probs, axis=1) != labels))
  optimal = _oracle_aurc(labels.size, num_errors)
  return aurc(probs, labels) - 1000.0 * optimal


def classification_metrics_from_probs(
    probs: ArrayLike, labels: ArrayLike,
    mask: ArrayLike | None = None) -> dict[str, float]:
  """All metrics from `[n, C]` probabilities; see `classification_metrics`."""
  probs, labels = _select(probs, labels, mask)
  return _all_metrics(probs, labels, nll(probs, labels))


def classification_metrics(logits: ArrayLike, labels: ArrayLike,
                           mask: ArrayLike | None = None) -> dict[str, float]:
  """All metrics of an eval set from its logits.

  Args:
    logits: `[n, C]` logits.
    labels: `[n]` int labels.
    mask: optional boolean `[n]`, False rows excluded.

  Returns:
    A dict with "error", "top5_error", "ece" (15 bins), "ece_10" (10 bins,
    the official PS-KD setting) in %, "nll" in nats, "aurc" and "eaurc"
    x1000, and "num_examples" (rows kept, an int).
  """
  logits, labels = _select(logits, labels, mask)
  return _all_metrics(softmax(logits), labels,
                      nll_from_logits(logits, labels))


def _all_metrics(probs: np.ndarray, labels: np.ndarray,
                 nll_value: float) -> dict[str, float]:
  """The metric dict of already masked probabilities."""
  return {
      "error": error_rate(probs, labels),
      "top5_error": top5_error(probs, labels),
      "nll": nll_value,
      "ece": ece(probs, labels, num_bins=15),
      "ece_10": ece(probs, labels, num_bins=10),
      "aurc": aurc(probs, labels),
      "eaurc": eaurc(probs, labels),
      "num_examples": int(labels.size),
  }

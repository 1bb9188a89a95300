"""Tests for common/metrics.py against hand-computed and brute-force values."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sklearn import metrics as sk_metrics

from common.eval import metrics

# Four examples, two classes. Confidences 0.95 (right), 0.91 (wrong),
# 0.65 (wrong), 0.55 (right).
PROBS = np.array([[0.95, 0.05], [0.91, 0.09], [0.35, 0.65], [0.55, 0.45]])
LABELS = np.array([0, 1, 0, 0])


def _brute_aurc(conf: np.ndarray, errors: np.ndarray) -> float:
  """Unscaled AURC of one fixed ranking, by explicit selective risks."""
  n = conf.size
  order = sorted(range(n), key=lambda i: -conf[i])
  risks = []
  for k in range(1, n + 1):
    kept = order[:k]
    risks.append(sum(errors[i] for i in kept) / k)
  return sum(risks) / n


def _loop_ece(probs: np.ndarray, labels: np.ndarray, num_bins: int) -> float:
  """ECE in % with (lo, hi] bins, one bin at a time (the official scheme)."""
  conf = probs.max(axis=1)
  correct = probs.argmax(axis=1) == labels
  total = 0.0
  for m in range(num_bins):
    lo, hi = m / num_bins, (m + 1) / num_bins
    in_bin = (conf > lo) & (conf <= hi)
    if in_bin.any():
      gap = abs(correct[in_bin].mean() - conf[in_bin].mean())
      total += gap * in_bin.sum()
  return 100.0 * total / labels.size


def test_hand_computed_small_case():
  assert metrics.error_rate(PROBS, LABELS) == pytest.approx(50.0)
  assert metrics.top5_error(PROBS, LABELS) == 0.0  # only two classes
  # 10 bins: (0.9, 1] holds 0.95 (right) and 0.91 (wrong):
  # |1 - 1.86| = 0.86; then 0.65 wrong -> 0.65, 0.55 right -> 0.45.
  assert metrics.ece(PROBS, LABELS, num_bins=10) == pytest.approx(
      100 * (0.86 + 0.65 + 0.45) / 4)  # 49.0
  # 15 bins split 0.95 and 0.91: 0.05 + 0.91 + 0.65 + 0.45.
  assert metrics.ece(PROBS, LABELS) == pytest.approx(
      100 * (0.05 + 0.91 + 0.65 + 0.45) / 4)  # 51.5
  # Ranked errors 0, 1, 1, 0: risks 0, 1/2, 2/3, 2/4 -> mean 5/12.
  assert metrics.aurc(PROBS, LABELS) == pytest.approx(1000 * 5 / 12)
  # Oracle ranking 0, 0, 1, 1: risks 0, 0, 1/3, 2/4 -> 5/24.
  assert metrics.eaurc(PROBS, LABELS) == pytest.approx(1000 * (5 / 12 - 5 / 24))
  expected_nll = -np.mean(np.log([0.95, 0.09, 0.35, 0.55]))
  assert metrics.nll(PROBS, LABELS) == pytest.approx(expected_nll)


def test_ece_bins_are_right_closed():
  # Two bins (0, 0.5], (0.5, 1]; exactly representable confidences.
  probs = np.array([[0.5, 0.5], [0.25, 0.75]])
  labels = np.array([0, 0])  # first right (argmax 0), second wrong
  # Right-closed: 0.5 alone in bin 0 -> 0.5; 0.75 alone -> 0.75.
  # (Left-closed would pool them: |1 - 1.25| / 2 = 12.5 %.)
  assert metrics.ece(probs, labels, num_bins=2) == pytest.approx(62.5)


def test_known_miscalibration():
  # Always 90 % confident, right half of the time: ECE = |0.5 - 0.9| = 40 %.
  probs = np.array([[0.9, 0.05, 0.05]] * 4)
  labels = np.array([0, 1, 0, 2])
  assert metrics.ece(probs, labels) == pytest.approx(40.0)
  assert metrics.ece(probs, labels, num_bins=10) == pytest.approx(40.0)


def test_perfect_confident_predictions():
  labels = np.arange(10) % 4
  logits = 60.0 * np.eye(4)[labels]
  out = metrics.classification_metrics(logits, labels)
  assert out["error"] == 0.0
  assert out["top5_error"] == 0.0
  assert out["ece"] == 0.0
  assert out["ece_10"] == 0.0
  assert out["aurc"] == 0.0
  assert out["eaurc"] == 0.0
  assert out["nll"] == pytest.approx(0.0, abs=1e-20)
  assert out["num_examples"] == 10


def test_classification_metrics_keys_and_consistency():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(200, 7)) * 3
  labels = rng.integers(0, 7, size=200)
  out = metrics.classification_metrics(logits, labels)
  assert set(out) == {"error", "top5_error", "nll", "ece", "ece_10", "aurc",
                      "eaurc", "num_examples"}
  probs = metrics.softmax(logits)
  from_probs = metrics.classification_metrics_from_probs(probs, labels)
  for key, value in out.items():
    assert from_probs[key] == pytest.approx(value, rel=1e-9), key
  assert out["ece_10"] == pytest.approx(metrics.ece(probs, labels, 10))


def test_nll_matches_sklearn():
  rng = np.random.default_rng(1)
  logits = rng.normal(size=(64, 5)) * 4
  labels = rng.integers(0, 5, size=64)
  probs = metrics.softmax(logits)
  expected = sk_metrics.log_loss(labels, probs, labels=np.arange(5))
  assert metrics.nll_from_logits(logits, labels) == pytest.approx(expected)
  assert metrics.nll(probs, labels) == pytest.approx(expected)
  # Stable for extreme logits where a naive softmax would underflow to 0.
  extreme = np.array([[0.0, 2000.0]])
  assert metrics.nll_from_logits(extreme, np.array([0])) == pytest.approx(
      2000.0)


def test_topk_error():
  scores = np.array([[6, 5, 4, 3, 2, 1, 0.0],   # label rank 6 -> miss
                     [6, 5, 4, 3, 2, 1, 0.0],   # label rank 5 -> hit
                     [0, 1, 2, 3, 4, 5, 6.0]])  # label rank 1 -> hit
  labels = np.array([5, 4, 6])
  assert metrics.top5_error(scores, labels) == pytest.approx(100 / 3)
  assert metrics.error_rate(scores, labels) == pytest.approx(200 / 3)


def test_ece_matches_binwise_loop():
  rng = np.random.default_rng(2)
  probs = metrics.softmax(rng.normal(size=(500, 10)) * 2)
  labels = rng.integers(0, 10, size=500)
  for num_bins in (10, 15):
    assert metrics.ece(probs, labels, num_bins) == pytest.approx(
        _loop_ece(probs, labels, num_bins))


def test_aurc_matches_brute_force_and_official_oracle():
  rng = np.random.default_rng(3)
  n = 60
  probs = metrics.softmax(rng.normal(size=(n, 4)) * 2)
  labels = rng.integers(0, 4, size=n)
  conf = probs.max(axis=1)
  errors = (probs.argmax(axis=1) != labels).astype(float)
  assert metrics.aurc(probs, labels) == pytest.approx(
      1000 * _brute_aurc(conf, errors))
  r = int(errors.sum())
  # Closed form of the official `opt_aurc`.
  opt = np.sum(np.arange(1, r + 1) / (n - r + np.arange(1, r + 1))) / n
  assert metrics.eaurc(probs, labels) == pytest.approx(
      metrics.aurc(probs, labels) - 1000 * opt)
  curve = metrics.risk_coverage_curve(probs, labels)
  assert curve.shape == (n,)
  assert curve[-1] == pytest.approx(errors.mean())


def test_aurc_ties_average_over_orderings():
  # Tie groups {0.8 x3} and {0.6 x2}: the value is the mean over orderings.
  probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.2, 0.8], [0.8, 0.2],
                    [0.6, 0.4], [0.4, 0.6]])
  labels = np.array([0, 1, 1, 0, 1, 1])
  conf = probs.max(axis=1)
  errors = (probs.argmax(axis=1) != labels).astype(float)
  values = []
  for perm in itertools.permutations(range(6)):
    if all(conf[perm[i]] >= conf[perm[i + 1]] for i in range(5)):
      ranked = [errors[i] for i in perm]
      values.append(np.mean(np.cumsum(ranked) / np.arange(1, 7)))
  assert len(values) == 3 * 2 * 1 * 2
  assert metrics.aurc(probs, labels) == pytest.approx(1000 * np.mean(values))
  # Independent of the dataset order.
  shuffle = np.array([5, 3, 0, 4, 1, 2])
  assert metrics.aurc(probs[shuffle], labels[shuffle]) == pytest.approx(
      metrics.aurc(probs, labels))


def test_mask_excludes_rows():
  rng = np.random.default_rng(4)
  logits = rng.normal(size=(30, 6)) * 3
  labels = rng.integers(0, 6, size=30)
  mask = rng.random(30) < 0.6
  padded_labels = np.where(mask, labels, -1)  # padding labels are never read
  masked = metrics.classification_metrics(logits, padded_labels, mask)
  subset = metrics.classification_metrics(logits[mask], labels[mask])
  assert masked == pytest.approx(subset)
  assert masked["num_examples"] == int(mask.sum())
  assert metrics.ece(metrics.softmax(logits), padded_labels,
                     mask=mask) == pytest.approx(subset["ece"])


def test_empty_selection_gives_nan():
  out = metrics.classification_metrics(np.zeros((3, 4)), np.zeros(3, int),
                                       np.zeros(3, bool))
  assert out["num_examples"] == 0
  assert all(np.isnan(v) for k, v in out.items() if k != "num_examples")


def test_invalid_inputs_raise():
  with pytest.raises(ValueError):
    metrics.error_rate(np.zeros((3, 2)), np.array([0, 1, 2]))
  with pytest.raises(ValueError):
    metrics.error_rate(np.zeros((3, 2)), np.array([0, 1]))
  with pytest.raises(ValueError):
    metrics.error_rate(np.zeros((3, 2)), np.zeros(3, int), np.ones(3))

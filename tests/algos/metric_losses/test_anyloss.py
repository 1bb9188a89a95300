"""AnyLoss: soft -> hard confusion matrix, gradients, parity with the
authors' formulas, BCE baseline, bad input, traced hyperparameters.

The authors' code is TensorFlow/Keras (not installed here), so the parity
oracle below re-derives their loss functions in numpy from the notebooks'
formulas (doheonhan/anyloss_extension `AnyLoss_Code.ipynb`: `Any_Accu`,
`Any_Fbeta`, `Any_Gmean`, `Any_BAccu` with N = the batch size and s = 1e-5;
doheonhan/anyloss README: `Ours_Gmean` with the square root), written
independently of `algos/metric_losses/anyloss.py`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import test_util as jtu

from algos.baselines import cross_entropy
from algos.metric_losses import anyloss
from common import config as config_lib

S = 1e-5  # the extension code's `s`


def _authors(metric, y_true, y_pred, L=73.0, b=1.0):
  """The authors' losses on sigmoid outputs `y_pred` (numpy float64)."""
  y_true, y_pred = np.asarray(y_true, np.float64), np.asarray(y_pred,
                                                              np.float64)
  y_pred = 1 / (1 + np.exp(-L * (y_pred - 0.5)))
  n = len(y_true)
  y1 = y_true.sum()
  y0 = n - y1
  tp = (y_true * y_pred).sum()
  tn = n - y_true.sum() - y_pred.sum() + tp
  if metric == "accuracy":
    return 1 - (tp + tn) / n
  if metric in ("f1", "fbeta"):
    return 1 - (1 + b ** 2) * tp / (b ** 2 * y1 + y_pred.sum() + S)
  if metric == "gmean_squared":
    return 1 - tp * tn / (y1 * y0 + S)
  if metric == "gmean":   # Ours_Gmean, with the extension's s
    return 1 - np.sqrt(tp * tn / (y1 * y0 + S))
  if metric == "balanced_accuracy":
    return 1 - (y0 * tp + y1 * tn) / (2 * y1 * y0 + S)
  raise ValueError(metric)


def _logits_for(p):
  """`[b, 2]` logits whose softmax[:, 1] is `p`."""
  p = jnp.asarray(p, jnp.float32)
  return jnp.stack([jnp.zeros_like(p), jnp.log(p) - jnp.log1p(-p)], axis=1)


def test_matches_the_authors_formulas():
  rng = np.random.default_rng(0)
  y = (rng.random(64) < 0.2).astype(np.int32)
  p = np.clip(rng.random(64), 0.02, 0.98)
  for metric in anyloss.METRICS:
    beta = 2.0 if metric == "fbeta" else 1.0
    for L in (73.0, 10.0):
      ours, _ = anyloss.anyloss(metric, _logits_for(p), jnp.asarray(y), None,
                                jnp.float32(L), jnp.float32(beta),
                                jnp.float32(S))
      np.testing.assert_allclose(ours, _authors(metric, y, p, L, beta),
                                 rtol=2e-5, atol=2e-6, err_msg=metric)


def test_soft_confusion_tends_to_the_hard_one():
  rng = np.random.default_rng(1)
  y = jnp.asarray(rng.random(200) < 0.3)
  p = jnp.asarray(rng.random(200))
  hard_pred = (p > 0.5).astype(jnp.float32)
  hard = anyloss.soft_confusion(y, hard_pred)
  gaps = []
  for L in (2.0, 10.0, 73.0, 1e3, 1e5):
    y_hat = anyloss.approximation(p, L)
    soft = anyloss.soft_confusion(y, y_hat)
    # Every entry is off by at most sum_i |A(p_i) - hard_i|, which shrinks
    # monotonically as L grows.
    gap = float(jnp.sum(jnp.abs(y_hat - hard_pred)))
    worst = max(abs(float(soft[k] - hard[k]))
                for k in ("tn", "fp", "fn", "tp"))
    assert worst <= gap + 1e-4
    gaps.append(gap)
  assert all(a > b for a, b in zip(gaps, gaps[1:])), gaps
  assert gaps[-1] < 1e-3
  # Counts are preserved exactly: TN + FP + FN + TP = n, TP + FN = sum y.
  soft = anyloss.soft_confusion(y, anyloss.approximation(p, 73.0))
  assert float(soft["tn"] + soft["fp"] + soft["fn"] + soft["tp"]) == (
      pytest.approx(200))
  assert float(soft["tp"] + soft["fn"]) == pytest.approx(float(y.sum()))


def test_approximation_pushes_away_from_half():
  p = jnp.array([0.0, 0.2, 0.5, 0.7, 1.0])
  a = anyloss.approximation(p, 73.0)
  assert float(a[1]) < 0.2 and float(a[3]) > 0.7 and float(a[2]) == 0.5
  # A(0) = 1 / (1 + e^36.5) ~ 1.4e-16 > 0 (A(1) rounds to 1 in float32).
  assert 0.0 < float(a[0]) < 1e-15 and float(a[-1]) > 1 - 1e-6


def test_mask_drops_rows():
  y = jnp.array([1, 0, 1, 0])
  logits = _logits_for(jnp.array([0.9, 0.2, 0.4, 0.7]))
  hp = (jnp.float32(73.0), jnp.float32(1.0), jnp.float32(S))
  masked, _ = anyloss.anyloss("f1", logits, y, jnp.array([1, 1, 0, 0], bool),
                              *hp)
  kept, _ = anyloss.anyloss("f1", logits[:2], y[:2], None, *hp)
  np.testing.assert_allclose(masked, kept, rtol=1e-6)


def test_gradients_match_finite_differences():
  rng = np.random.default_rng(2)
  y = jnp.asarray([1, 0, 0, 1, 0, 0, 1, 0])
  logits = jnp.asarray(rng.normal(size=(8, 2)), jnp.float32)

  @jax.jit
  def every_loss(lg):   # [6] losses: one compilation for every metric
    return jnp.stack([anyloss.anyloss(
        m, lg, y, None, jnp.float32(4.0), jnp.float32(1.5),
        jnp.float32(S))[0] for m in sorted(anyloss.METRICS)])
  jtu.check_grads(every_loss, (logits,), order=1, modes=("rev",), eps=1e-3,
                  atol=5e-3, rtol=5e-3)


def test_gmean_gradient_is_finite_without_positives():
  y = jnp.zeros(6, jnp.int32)
  logits = _logits_for(jnp.full(6, 0.3))
  g = jax.grad(lambda lg: anyloss.anyloss("gmean", lg, y, None,
                                          jnp.float32(73.0), jnp.float32(1.0),
                                          jnp.float32(S))[0])(logits)
  assert np.all(np.isfinite(g))


def test_bce_baseline_is_two_class_cross_entropy():
  rng = np.random.default_rng(3)
  logits = jnp.asarray(rng.normal(size=(16, 2)), jnp.float32)
  y = jnp.asarray(rng.random(16) < 0.3).astype(jnp.int32)
  ce, _, _ = cross_entropy.loss({"label_smoothing": jnp.float32(0.0)}, {},
                                {"logits": logits},
                                {"label": y, "mask": jnp.ones(16, bool)}, {},
                                None)
  p = np.asarray(anyloss.positive_probability(logits), np.float64)
  bce = -np.mean(np.where(np.asarray(y) == 1, np.log(p), np.log(1 - p)))
  np.testing.assert_allclose(ce, bce, rtol=1e-5)


def test_unknown_metric_is_a_one_line_config_error():
  with pytest.raises(config_lib.ConfigError) as e:
    anyloss.make({"metric": "auc", "L": 73.0, "beta": 1.0, "eps": S})
  message = str(e.value)
  assert "\n" not in message and "'auc'" in message
  for name in anyloss.METRICS:
    assert name in message


def test_multiclass_logits_are_refused():
  with pytest.raises(ValueError, match="2 logits"):
    anyloss.positive_probability(jnp.zeros((4, 3)))


def test_hyperparameters_are_traced_and_metric_static():
  from common.core import method as method_lib  # pylint: disable=g-import-not-at-top
  method = anyloss.make({"metric": "balanced_accuracy", "L": 73.0,
                         "beta": 1.0, "eps": S})
  hp = method_lib.hparams_of(method, {"metric": "balanced_accuracy",
                                      "L": 73.0, "beta": 1.0, "eps": S},
                             None)
  assert set(hp) == {"L", "beta", "eps"}
  # One loss function per metric: equal configs give equal Methods.
  assert method == anyloss.make({"metric": "balanced_accuracy"})
  traces = []

  @jax.jit
  def step(hparams, logits, labels):
    traces.append(1)
    return method.loss(hparams, {}, {"logits": logits},
                       {"label": labels, "mask": jnp.ones(4, bool)}, {},
                       None)[0]
  logits, labels = jnp.zeros((4, 2)), jnp.array([0, 1, 0, 1])
  for L in (73.0, 30.0):
    step({k: jnp.float32(L if k == "L" else v) for k, v in hp.items()},
         logits, labels)
  assert len(traces) == 1

"""AnyLoss: any confusion-matrix metric of a binary classifier as a loss.

Han, Moniz, Chawla. "AnyLoss: Transforming Classification Metrics into Loss
Functions", KDD 2024, arXiv:2405.14745.
Authors' code (TensorFlow/Keras notebooks, read, not copied):
https://github.com/doheonhan/anyloss (the paper's experiments, `Ours_*`
losses) and https://github.com/doheonhan/anyloss_extension (`Any_*`
losses, `AnyLoss_Code.ipynb`).

The classifier's probability of the positive class `p_i` is pushed towards
0 or 1 by the approximation function (an amplified sigmoid)

    A(p) = 1 / (1 + exp(-L (p - 0.5))),     L = 73 in the paper and code,

and the confusion matrix is written with the amplified `y^_i = A(p_i)` in
place of the hard predictions (sums over the batch, `y_i` in {0, 1}):

    TP = sum y y^,  FN = sum y - TP,  FP = sum y^ - TP,  TN = n - TP - FN - FP.

Any metric of (TN, FP, FN, TP) is then differentiable in the parameters;
the loss is `1 - metric`. Metrics (`config.method.anyloss.metric`):

* `accuracy`: (TP + TN) / n
* `f1`, `fbeta`: (1 + b^2) TP / (b^2 sum y + sum y^)  (b = `beta`; 1 for f1)
* `balanced_accuracy`: (y0 TP + y1 TN) / (2 y1 y0),  y1 = sum y, y0 = n - y1
* `gmean`: sqrt(TP TN / (y1 y0)), the paper's G-mean (original repo,
  `Ours_Gmean`)
* `gmean_squared`: TP TN / (y1 y0), the extension repo's surrogate
  (`Any_Gmean`, no square root)

Like the extension code, `eps` (1e-5) is added to the denominators of
F-beta, balanced accuracy and G-mean (batches with one class only). The
paper's models end in one sigmoid unit; ours give two logits, and
`p = softmax(logits)[:, 1] = sigmoid(l1 - l0)`, the same function class (so
the BCE baseline is `cross_entropy` on two classes). The positive class is
label 1. The authors' repositories have no multi-class version, so neither
has this one: a model with C != 2 outputs is an error.

Differences from the authors' code, on purpose:
* `n` is the batch's number of (unmasked) examples. The original repo's
  `Ours_Accu`, `Ours_Gmean` and `Ours_BAccu` use the size of the whole
  training set (`y_train.shape[0]`) inside a mini-batch loss, which makes
  TN (and so G-mean and balanced accuracy) wrong for a batch; F-beta does
  not involve `n`. The extension repo uses the batch size, as we do.
* Padded rows (`mask` false) are left out of every sum.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp

from common import config as config_lib
from common.core import method as method_lib

# The paper's value (Section 3.2, "L = 73"); the authors' notebooks use it.
DEFAULT_L = 73.0
DEFAULT_EPS = 1e-5  # the extension code's `s`


def approximation(p: jax.Array, L: jax.Array | float = DEFAULT_L
                  ) -> jax.Array:
  """The amplified sigmoid `A(p) = 1 / (1 + exp(-L (p - 0.5)))`, any shape."""
  return jax.nn.sigmoid(L * (p - 0.5))


def soft_confusion(labels: jax.Array, y_hat: jax.Array,
                   mask: jax.Array | None = None) -> dict[str, jax.Array]:
  """The confusion matrix with predictions `y_hat` in [0, 1].

  Args:
    labels: `[b]` int or float labels in {0, 1} (1 = positive).
    y_hat: `[b]` (soft) predictions of the positive class.
    mask: optional `[b]` bool; False rows are left out.

  Returns:
    TN, FP, FN, TP, n (examples) and pos (positives) as float32 scalars;
    with hard 0/1 `y_hat` these are the usual counts.
  """
  y = labels.astype(jnp.float32)
  y_hat = y_hat.astype(jnp.float32)
  w = jnp.ones_like(y) if mask is None else mask.astype(jnp.float32)
  n, pos = jnp.sum(w), jnp.sum(w * y)
  tp = jnp.sum(w * y * y_hat)
  pred_pos = jnp.sum(w * y_hat)
  fn, fp = pos - tp, pred_pos - tp
  return dict(tn=n - tp - fn - fp, fp=fp, fn=fn, tp=tp, n=n, pos=pos)


def _safe_sqrt(x: jax.Array) -> jax.Array:
  """sqrt with a zero (not NaN) gradient at x <= 0 (a batch with TP = 0)."""
  positive = x > 0
  return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


def _accuracy(c, beta, eps):
  del beta, eps
  return (c["tp"] + c["tn"]) / c["n"]


def _fbeta(c, beta, eps):
  b2 = beta ** 2
  # (1+b^2) TP / ((1+b^2) TP + b^2 FN + FP) = (1+b^2) TP / (b^2 y1 + sum y^)
  return (1 + b2) * c["tp"] / (b2 * c["pos"] + c["tp"] + c["fp"] + eps)


def _f1(c, beta, eps):
  del beta
  return _fbeta(c, 1.0, eps)


def _balanced_accuracy(c, beta, eps):
  del beta
  neg = c["n"] - c["pos"]
  return (neg * c["tp"] + c["pos"] * c["tn"]) / (2 * c["pos"] * neg + eps)


def _gmean_squared(c, beta, eps):
  del beta
  return c["tp"] * c["tn"] / (c["pos"] * (c["n"] - c["pos"]) + eps)


def _gmean(c, beta, eps):
  return _safe_sqrt(_gmean_squared(c, beta, eps))


# name -> score(confusion, beta, eps); the loss is 1 - score.
METRICS: dict[str, Callable[..., jax.Array]] = {
    "accuracy": _accuracy,
    "f1": _f1,
    "fbeta": _fbeta,
    "balanced_accuracy": _balanced_accuracy,
    "gmean": _gmean,
    "gmean_squared": _gmean_squared,
}


def check_metric(name: str) -> str:
  """`name` if AnyLoss knows it, else a one-line ConfigError."""
  if name not in METRICS:
    raise config_lib.ConfigError(
        f"config.method.anyloss.metric={name!r} is not a metric AnyLoss "
        f"knows; allowed: {sorted(METRICS)}")
  return name


def metric_score(metric: str, labels: jax.Array, y_hat: jax.Array,
                 mask: jax.Array | None = None, beta: float = 1.0,
                 eps: float = DEFAULT_EPS) -> jax.Array:
  """`metric` of the (soft) confusion matrix of `y_hat` `[b]` vs `labels`."""
  return METRICS[check_metric(metric)](soft_confusion(labels, y_hat, mask),
                                       beta, eps)


def positive_probability(logits: jax.Array) -> jax.Array:
  """`[b, 2]` logits -> `[b]` p(class 1) = sigmoid(l1 - l0)."""
  if logits.shape[-1] != 2:
    raise ValueError(
        f"anyloss is a binary loss (the authors' code has no multi-class "
        f"version): the model must give 2 logits, got {logits.shape[-1]}; "
        "use a dataset with 2 classes")
  logits = logits.astype(jnp.float32)
  return jax.nn.sigmoid(logits[:, 1] - logits[:, 0])


def anyloss(metric: str, logits: jax.Array, labels: jax.Array,
            mask: jax.Array | None, L: jax.Array, beta: jax.Array,
            eps: jax.Array) -> tuple[jax.Array, jax.Array]:
  """`(1 - metric(soft confusion), metric)` of a batch.

  Args:
    metric: a key of `METRICS` (static).
    logits: `[b, 2]`.
    labels: `[b]` ints in {0, 1}.
    mask: `[b]` bool or None.
    L, beta, eps: traced scalars (see the module docstring).
  """
  y_hat = approximation(positive_probability(logits), L)
  score = METRICS[metric](soft_confusion(labels, y_hat, mask), beta, eps)
  return 1.0 - score, score


@functools.lru_cache(maxsize=None)
def make_loss(metric: str) -> Callable:
  """The Method's `loss` hook for one (static) metric (one function per
  metric, so equal configs give equal, jit-cache-friendly Methods)."""

  def loss(hparams, method_state, outputs, batch, params, rng):
    del params, rng
    value, score = anyloss(metric, outputs["logits"], batch["label"],
                           batch.get("mask"), hparams["L"], hparams["beta"],
                           hparams["eps"])
    return value, {f"soft_{metric}": score}, method_state

  return loss


RULES = {
    "L": config_lib.greater_than(0.0),
    "beta": config_lib.greater_than(0.0),
    "eps": config_lib.at_least(0.0),
}


@method_lib.register_method("anyloss")
def make(config: dict) -> method_lib.Method:
  """`config`: metric (static name), L, beta, eps (traced)."""
  metric = check_metric(config.get("metric", "f1"))
  return method_lib.Method(
      name="anyloss", init=method_lib.stateless_init, loss=make_loss(metric),
      hparams=method_lib.default_hparams, rules=RULES)

"""Distance-covariance dependence measures for fairness regularisation.

Paper: Machine Learning with Multitype Protected Attributes: Intersectional
Fairness through Regularisation. Lee, Antonio, Avanzi, Marchi, Zhou, 2025.
arXiv:2509.08163. No official code for the paper itself; the authors' lab
companion site agi-lab/beyond-correlation (`general/dcovs.py`) was read to
check the estimators (U-statistic JdCov with c = 1, CCdCov = dCov of the
prediction and the concatenated protected attributes). Our code is written
from the definitions (Szekely, Rizzo, Bakirov 2007; Chakraborty and Zhang
2019, JASA, "Distance metrics for measuring joint dependence").

All estimators take a row `mask` (padded rows of a batch): a masked row
counts nowhere, so the value on a padded batch equals the value on its
valid rows alone (tested).

* `dcov2(x, y)`: the V-statistic dCov^2_n of Szekely et al. (2007),
  `sum_kl A_kl B_kl / n^2` with double-centred Euclidean distance matrices
  (equal to `dcor.distance_covariance_sqr`, tested). `estimator="u"`: the
  unbiased U-statistic (`dcor.u_distance_covariance_sqr`).
* `jdcov2(xs, c)`: joint distance covariance of d >= 2 blocks (Chakraborty
  and Zhang 2019, eq. (11)): `sum_kl prod_i (U_i,kl + c) / n^2 - c^d` with
  `U_i = -A_i`. For d = 2 it is dCov^2 (tested). The U-statistic version is
  `sum_{k != l} prod_i (U~_i,kl + c) / (n (n-3)) - c^d (n-1)/(n-3)`, which
  for c = 1 is the companion code's `JdCov_sq_unbiased`.
* `ccdcov2(pred, blocks) = dcov2(pred, concat(blocks))` (the paper's
  concatenated dCov).
* `marginal_dcov2(pred, blocks) = sum_i dcov2(pred, block_i)` (the baseline
  that only sees each attribute on its own).

Cost: O(n^2 (p + q)) time and O(n^2) memory per call (n = batch rows).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

ESTIMATORS = ("v", "u")


def _as_2d(x: jax.Array) -> jax.Array:
  x = jnp.asarray(x, jnp.float32)
  return x[:, None] if x.ndim == 1 else x.reshape(x.shape[0], -1)


def _mask_of(n: int, mask: jax.Array | None) -> jax.Array:
  return (jnp.ones((n,), jnp.float32) if mask is None
          else jnp.asarray(mask, jnp.float32))


def distances(x: jax.Array) -> jax.Array:
  """`[n, n]` Euclidean distances of the rows of `x` `[n]` or `[n, p]`.

  The gradient is exact where two rows differ and zero where they coincide
  (the diagonal, tied rows): no epsilon enters the value.
  """
  x = _as_2d(x)
  diff = x[:, None, :] - x[None, :, :]
  sq = jnp.sum(diff * diff, axis=-1)
  positive = sq > 0
  return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)


def double_centred(x: jax.Array, mask: jax.Array | None = None) -> jax.Array:
  """`A_kl = a_kl - a_k. - a_.l + a_..` over the valid rows (`[n, n]`).

  Means are over valid rows only; rows and columns of masked rows are 0.
  """
  a = distances(x)
  w = _mask_of(a.shape[0], mask)
  w = w / jnp.maximum(jnp.sum(w), 1.0)
  row = a @ w                                   # a_k. (weighted)
  grand = row @ w
  centred = a - row[:, None] - row[None, :] + grand
  valid = w > 0
  return jnp.where(valid[:, None] & valid[None, :], centred, 0.0)


def u_centred(x: jax.Array, mask: jax.Array | None = None) -> jax.Array:
  """The U-centred matrix (Szekely and Rizzo 2014) over the valid rows.

  `U~_kl = a_kl - a_k+/(n-2) - a_+l/(n-2) + a_++/((n-1)(n-2))` for k != l,
  0 on the diagonal and on masked rows (n = number of valid rows, > 3).
  """
  a = distances(x)
  m = _mask_of(a.shape[0], mask)
  valid = (m[:, None] > 0) & (m[None, :] > 0)
  a = jnp.where(valid, a, 0.0)
  n = jnp.sum(m)
  row = jnp.sum(a, axis=1)
  total = jnp.sum(row)
  u = (a - row[:, None] / (n - 2) - row[None, :] / (n - 2)
       + total / ((n - 1) * (n - 2)))
  off_diag = valid & ~jnp.eye(a.shape[0], dtype=bool)
  return jnp.where(off_diag, u, 0.0)


def _centred(x, mask, estimator):
  if estimator == "v":
    return double_centred(x, mask)
  if estimator == "u":
    return u_centred(x, mask)
  raise ValueError(f"estimator={estimator!r}; allowed: {ESTIMATORS}")


def dcov2(x: jax.Array, y: jax.Array, mask: jax.Array | None = None,
          estimator: str = "v") -> jax.Array:
  """Squared distance covariance of `x` `[n, p]` and `y` `[n, q]` (scalar).

  `estimator="v"`: `sum_kl A_kl B_kl / n^2` (>= 0, zero iff the empirical
  joint law factorises); `"u"`: the unbiased `sum U~_a U~_b / (n (n-3))`.
  """
  a, b = _centred(x, mask, estimator), _centred(y, mask, estimator)
  n = jnp.sum(_mask_of(a.shape[0], mask))
  norm = n * n if estimator == "v" else n * (n - 3)
  return jnp.sum(a * b) / norm


def jdcov2(xs: Sequence[jax.Array], c: float | jax.Array = 1.0,
           mask: jax.Array | None = None, estimator: str = "v") -> jax.Array:
  """Joint distance covariance JdCov^2(X_1, ..., X_d; c), d >= 2 (scalar).

  Zero (population) iff X_1..X_d are mutually independent. Each block is
  `[n]` or `[n, p_i]`; `c` > 0 weighs the higher-order terms (the
  expansion is sum over pairs of dCov^2 + c * third-order + ... ).
  """
  if len(xs) < 2:
    raise ValueError(f"jdcov2 needs at least 2 blocks, got {len(xs)}")
  n_rows = _as_2d(xs[0]).shape[0]
  m = _mask_of(n_rows, mask)
  valid = (m[:, None] > 0) & (m[None, :] > 0)
  n = jnp.sum(m)
  d = len(xs)
  prod = None
  for x in xs:
    term = -_centred(x, mask, estimator) + c
    prod = term if prod is None else prod * term
  if estimator == "v":
    return jnp.sum(jnp.where(valid, prod, 0.0)) / (n * n) - c ** d
  off_diag = valid & ~jnp.eye(n_rows, dtype=bool)
  return (jnp.sum(jnp.where(off_diag, prod, 0.0)) / (n * (n - 3))
          - c ** d * (n - 1) / (n - 3))


def ccdcov2(pred: jax.Array, blocks: Sequence[jax.Array],
            mask: jax.Array | None = None, estimator: str = "v"
            ) -> jax.Array:
  """CCdCov^2 = dCov^2(pred, concat(blocks)) (scalar)."""
  s = jnp.concatenate([_as_2d(b) for b in blocks], axis=1)
  return dcov2(pred, s, mask, estimator)


def marginal_dcov2(pred: jax.Array, blocks: Sequence[jax.Array],
                   mask: jax.Array | None = None, estimator: str = "v"
                   ) -> jax.Array:
  """sum_i dCov^2(pred, block_i): each attribute on its own (scalar)."""
  a = _centred(pred, mask, estimator)
  n = jnp.sum(_mask_of(a.shape[0], mask))
  norm = n * n if estimator == "v" else n * (n - 3)
  return sum(jnp.sum(a * _centred(b, mask, estimator)) for b in blocks) / norm


def jdcov2_pred(pred: jax.Array, blocks: Sequence[jax.Array],
                c: float | jax.Array = 1.0, mask: jax.Array | None = None,
                estimator: str = "v") -> jax.Array:
  """JdCov^2(pred, S_1, ..., S_k; c): the paper's joint regulariser.

  The terms among the protected attributes alone do not depend on the
  model; they shift the value, not its gradient.
  """
  return jdcov2([pred, *blocks], c, mask, estimator)


REGULARISERS = {
    "marginal": lambda pred, blocks, c, mask, est: marginal_dcov2(
        pred, blocks, mask, est),
    "ccdcov": lambda pred, blocks, c, mask, est: ccdcov2(
        pred, blocks, mask, est),
    "jdcov": jdcov2_pred,
}


def regulariser(kind: str, pred: jax.Array, blocks: Sequence[jax.Array],
                c: float | jax.Array = 1.0, mask: jax.Array | None = None,
                estimator: str = "v") -> jax.Array:
  """The named dependence penalty of `pred` on the protected `blocks`."""
  if kind not in REGULARISERS:
    raise ValueError(f"regulariser kind={kind!r}; allowed: "
                     f"{tuple(REGULARISERS)}")
  return REGULARISERS[kind](pred, blocks, c, mask, estimator)

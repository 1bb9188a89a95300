"""Adaptive mutual-information estimators for the information plane.

Chelombiev, Houghton, O'Donnell, "Adaptive Estimators Show Information
Compression in Deep Neural Networks", ICLR 2019 (arXiv:1902.09037);
official code ivansche/adaptive_estimators (Keras/TF, @584a428):
`idnns/information/information_process.py` (`set_up_bins`,
`calc_information_sampling`, `calc_kde_info_for_layer`),
`mutual_information_calculation.py`, `kde.py`.

A layer's activity `T` `[n, d]` on all n inputs X (each input once, so X is
uniform over n values) and the labels Y give two numbers in bits:

* binned: every unit's value is replaced by its bin under one set of edges
  per layer; T's discrete rows give `I(X;T) = H(X) + H(T) - H(X,T)` and
  `I(T;Y) = H(T) + H(Y) - H(T,Y)` with plug-in entropies (the official
  `calc_information_from_mat`; with distinct inputs `H(T|X) = 0`, so
  `I(X;T) = H(T) <= log2 n`).
  - EBAB (entropy-based adaptive binning, `ebab_edges`): the official
    `set_up_bins(..., maxentropy=True)`: the sorted *distinct* values of the
    layer at that epoch (all units pooled), without the value `low`
    (0 for ReLU, so exact zeros keep a bin of their own), give the edges
    `[low, u[floor(k U / B)] for k < B, u[U - 1]]`: every bin but the two
    ends holds U / B distinct values (equal mass for continuous activity).
  - fixed width (`fixed_edges`): `linspace(lo, hi, B)` (the official
    non-adaptive `num_of_bins = 30` edges).
* KDE (`kde_mi`): T plus Gaussian noise of variance `var`, the
  Kolchinsky-Tracey pairwise-distance upper bound of the mixture entropy
  (official `kde.entropy_estimator_kl`): `I(X;T) = -mean_i log mean_j
  exp(-|t_i - t_j|^2 / 2 var)`, `I(T;Y) = H(T) - sum_y p(y) H(T | y)`.
  Adaptive (`adaptive_kde_mi`): `sigma = scale * (max T - min T)`, so the
  estimate is invariant to rescaling the layer (the paper scales the noise
  to the layer's activity; the official file keeps var = 0.01 fixed).

Binned estimators sort `[n, d]` codes (O(n log n)); KDE builds the `[n, n]`
distance matrix (O(n^2 d), 64 MB at n = 4096). All functions are pure jnp
and jit-compatible. The training method (`adaptive_mi`) is cross-entropy
plus the official L2 term `l2 * sum ||W||^2 / 2` over every kernel but the
output layer's (`model.cross_entropy` with `-l2`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from algos.baselines import cross_entropy
from common import config as config_lib
from common.core import method as method_lib

LN2 = 0.6931471805599453
# `low` of the official EBAB edges per activation: tanh and ELU -1.000001
# (below their range), ReLU/softplus 0.
EBAB_LOW = {"tanh": -1.000001, "elu": -1.000001, "relu": 0.0,
            "softplus": 0.0}


def ebab_edges(acts: jax.Array, n_bins: int, low: float) -> jax.Array:
  """Entropy-based adaptive bin edges of one layer (official `set_up_bins`).

  Args:
    acts: `[n, d]` (any shape; all values pooled).
    n_bins: B, the official `num_of_bins`.
    low: the first edge; values equal to it are left out of the quantiles.

  Returns:
    `[B + 2]` non-decreasing edges `[low, u[floor(k U / B)] (k < B),
    u[U - 1]]` over the U sorted distinct values u != low (all `low` when
    U = 0).
  """
  flat = jnp.sort(jnp.ravel(acts).astype(jnp.float32))
  size = flat.shape[0]
  new = jnp.concatenate([jnp.ones((1,), bool), flat[1:] != flat[:-1]])
  new = new & (flat != low)
  count = jnp.sum(new)
  rank = jnp.where(new, jnp.cumsum(new) - 1, size)
  uniq = jnp.zeros((size,), jnp.float32).at[rank].set(flat, mode="drop")
  k = jnp.arange(n_bins)
  inner = uniq[(k * count) // n_bins]
  edges = jnp.concatenate([jnp.full((1,), low, jnp.float32), inner,
                           uniq[jnp.maximum(count - 1, 0)][None]])
  return jnp.where(count > 0, edges, jnp.float32(low))


def fixed_edges(lo: jax.Array, hi: jax.Array, n_edges: int) -> jax.Array:
  """`[n_edges]` equal-width edges from `lo` to `hi` (`np.linspace`)."""
  return jnp.linspace(lo, hi, n_edges).astype(jnp.float32)


def digitize(acts: jax.Array, edges: jax.Array) -> jax.Array:
  """int32 bin of every value: `np.digitize(acts, edges) - 1` (edge e_i
  opens bin i; values below `edges[0]` go to bin 0)."""
  codes = jnp.searchsorted(edges, acts.astype(jnp.float32), side="right") - 1
  return jnp.clip(codes, 0, edges.shape[0] - 1).astype(jnp.int32)


def dense_rank(keys: jax.Array) -> jax.Array:
  """`[n]` int keys -> `[n]` ranks of their distinct values in [0, n)."""
  order = jnp.argsort(keys)
  ordered = keys[order]
  new = jnp.concatenate([jnp.zeros((1,), jnp.int32),
                         (ordered[1:] != ordered[:-1]).astype(jnp.int32)])
  return jnp.zeros(keys.shape, jnp.int32).at[order].set(jnp.cumsum(new))


def row_ids(codes: jax.Array) -> jax.Array:
  """`[n, d]` non-negative int codes -> `[n]` ids in [0, n), equal iff the
  rows are (column by column: `id <- rank(id * base + code)`, int32, so
  `n * (max code + 1)` must stay below 2^31)."""
  codes = jnp.asarray(codes).reshape(codes.shape[0], -1).astype(jnp.int32)
  base = jnp.max(codes) + 1

  def column(j, ids):
    return dense_rank(ids * base + codes[:, j])
  return jax.lax.fori_loop(0, codes.shape[1], column,
                           jnp.zeros(codes.shape[:1], jnp.int32))


def plugin_entropy(ids: jax.Array) -> jax.Array:
  """Plug-in entropy (bits) of `[n]` ids in [0, n) taken as equally likely
  samples."""
  n = ids.shape[0]
  p = jnp.bincount(ids, length=n) / n
  return -jnp.sum(jnp.where(p > 0, p * jnp.log2(jnp.where(p > 0, p, 1.0)),
                            0.0))


def binned_mi(codes: jax.Array, x_ids: jax.Array, y: jax.Array
              ) -> tuple[jax.Array, jax.Array]:
  """`(I(X;T), I(T;Y))` in bits of discrete T rows `codes` `[n, d]`.

  Args:
    codes: `[n, d]` int bins of T (one row per input).
    x_ids: `[n]` int identity of each row's input.
    y: `[n]` int labels.
  """
  t = row_ids(codes)
  x = row_ids(x_ids[:, None])
  yy = row_ids(y[:, None])
  h_t = plugin_entropy(t)
  h_xt = plugin_entropy(row_ids(jnp.stack([x, t], axis=1)))
  h_ty = plugin_entropy(row_ids(jnp.stack([t, yy], axis=1)))
  return (plugin_entropy(x) + h_t - h_xt, h_t + plugin_entropy(yy) - h_ty)


def ebab_mi(acts: jax.Array, x_ids: jax.Array, y: jax.Array, n_bins: int,
            low: float) -> tuple[jax.Array, jax.Array]:
  """`(I(X;T), I(T;Y))` bits with EBAB edges of this layer (`ebab_edges`)."""
  return binned_mi(digitize(acts, ebab_edges(acts, n_bins, low)), x_ids, y)


def fixed_mi(acts: jax.Array, x_ids: jax.Array, y: jax.Array, n_edges: int,
             lo: jax.Array, hi: jax.Array) -> tuple[jax.Array, jax.Array]:
  """`(I(X;T), I(T;Y))` bits with `n_edges` equal-width edges on [lo, hi]."""
  return binned_mi(digitize(acts, fixed_edges(lo, hi, n_edges)), x_ids, y)


def kde_mi(acts: jax.Array, y: jax.Array, var: jax.Array, num_classes: int
           ) -> tuple[jax.Array, jax.Array]:
  """`(I(X;T), I(T;Y))` bits of `T + N(0, var I)` (pairwise KL upper bound).

  Args:
    acts: `[n, d]` activity on n distinct inputs.
    y: `[n]` int labels in [0, num_classes).
    var: the noise variance (> 0).
    num_classes: number of label values.

  Returns:
    `I(X;T) = H(T) - H(T|X)` and `I(T;Y) = H(T) - sum_c p(c) H(T|c)` where
    the mixture entropies use the Kolchinsky-Tracey upper bound (the
    d-dependent constants cancel): `H(T) = -mean_i log mean_j K_ij` with
    `K_ij = exp(-|t_i - t_j|^2 / 2 var)`, `H(T|c)` the same over class c.
    `I(X;T) <= log2 n` (K_ii = 1). One `[n, n]` kernel, its class sums by
    a matmul.
  """
  t = acts.reshape(acts.shape[0], -1).astype(jnp.float32)
  sq_norm = jnp.sum(t * t, axis=1)
  sq = jnp.maximum(sq_norm[:, None] + sq_norm[None, :] - 2.0 * t @ t.T, 0.0)
  sq = jnp.where(jnp.eye(t.shape[0], dtype=bool), 0.0, sq)   # exact K_ii = 1
  kernel = jnp.exp(-sq / (2.0 * var))
  onehot = jax.nn.one_hot(y, num_classes, dtype=jnp.float32)   # [n, C]
  by_class = kernel @ onehot                                    # [n, C]
  counts = jnp.sum(onehot, axis=0)                              # [C]
  n = t.shape[0]
  h_t = -jnp.mean(jnp.log(jnp.sum(by_class, axis=1) / n))
  # H(T | c) = -mean_{i in c} log(sum_{j in c} K_ij / n_c)
  own = jnp.sum(by_class * onehot, axis=1)                      # [n]
  own_count = onehot @ counts
  h_t_y = -jnp.mean(jnp.log(own / own_count))   # sum_c p(c) H(T|c)
  return h_t / LN2, (h_t - h_t_y) / LN2


def adaptive_variance(acts: jax.Array, scale: jax.Array,
                      valid: jax.Array | None = None) -> jax.Array:
  """`(scale * (max - min of the layer's activity))^2`, floored at 1e-12
  (`valid`: a mask broadcastable to `acts` of the entries that count)."""
  valid = jnp.ones(acts.shape, bool) if valid is None else valid
  spread = (jnp.max(jnp.where(valid, acts, -jnp.inf))
            - jnp.min(jnp.where(valid, acts, jnp.inf)))
  return jnp.maximum((scale * spread) ** 2, 1e-12)


def adaptive_kde_mi(acts: jax.Array, y: jax.Array, scale: jax.Array,
                    num_classes: int) -> tuple[jax.Array, jax.Array]:
  """`kde_mi` with the noise scaled to the layer (`adaptive_variance`)."""
  return kde_mi(acts, y, adaptive_variance(acts, scale), num_classes)


def information_plane(layers: jax.Array, valid: jax.Array, x_ids: jax.Array,
                      y: jax.Array, low: float, fixed_lo: jax.Array,
                      fixed_hi: jax.Array, kde_scale: jax.Array,
                      n_bins: int = 30, num_classes: int = 2
                      ) -> dict[str, jax.Array]:
  """Every estimator on every layer, one compilation for all widths.

  Args:
    layers: `[L, n, D]` the layers' activity, each padded to D columns.
    valid: `[L, D]` bool, the real columns (padding is set to `low`, which
      EBAB leaves out and which adds a constant column: no MI change).
    x_ids, y: `[n]` input identities and labels.
    low: the EBAB first edge (`EBAB_LOW`).
    fixed_lo, fixed_hi: `[L]` ranges of the fixed-width bins.
    kde_scale: noise std of the adaptive KDE per unit of activity range.
    n_bins: B of EBAB and the number of fixed-width edges.
    num_classes: label values.

  Returns:
    `{"ixt_ebab", "ity_ebab", "ixt_fixed", "ity_fixed", "ixt_kde",
    "ity_kde"}`, each `[L]` bits.
  """
  def one(args):
    acts, ok, lo, hi = args
    acts = jnp.where(ok[None, :], acts, jnp.float32(low))
    e = ebab_mi(acts, x_ids, y, n_bins, low)
    f = fixed_mi(acts, x_ids, y, n_bins, lo, hi)
    k = kde_mi(acts, y, adaptive_variance(acts, kde_scale, ok[None, :]),
               num_classes)
    return jnp.stack([*e, *f, *k])
  out = jax.lax.map(one, (layers.astype(jnp.float32), valid, fixed_lo,
                          fixed_hi))
  names = ("ixt_ebab", "ity_ebab", "ixt_fixed", "ity_fixed", "ixt_kde",
           "ity_kde")
  return {name: out[:, i] for i, name in enumerate(names)}


def kernel_l2(params: Any, head: str = "head") -> jax.Array:
  """`sum ||W||^2 / 2` over every `kernel` leaf outside module `head`."""
  total = jnp.float32(0.0)
  for path, leaf in jax.tree_util.tree_leaves_with_path(params):
    names = [getattr(p, "key", "") for p in path]
    if names and names[-1] == "kernel" and head not in names:
      total = total + 0.5 * jnp.sum(jnp.square(leaf.astype(jnp.float32)))
  return total


def loss(hparams, method_state, outputs, batch, params, rng):
  """Cross-entropy + `l2 * kernel_l2(params)` (the official L2 loss)."""
  ce, metrics, method_state = cross_entropy.loss(
      {"label_smoothing": jnp.float32(0.0)}, method_state, outputs, batch,
      params, rng)
  penalty = kernel_l2(params)
  return ce + hparams["l2"] * penalty, {**metrics, "l2_norm": penalty}, (
      method_state)


METHOD = method_lib.Method(
    name="adaptive_mi",
    init=method_lib.stateless_init,
    loss=loss,
    hparams=method_lib.default_hparams,
    rules={"l2": config_lib.at_least(0.0)},
)


@method_lib.register_method("adaptive_mi")
def make(config: dict) -> method_lib.Method:
  del config
  return METHOD

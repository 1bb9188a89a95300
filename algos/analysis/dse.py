"""Diffusion spectral entropy (DSE) and mutual information (DSMI).

Liao, Liu, Christensen, Tong, Huguet, Wolf, Nickel, Adelstein, Krishnaswamy,
"Assessing Neural Network Representations During Training Using
Noise-Resilient Diffusion Spectral Entropy", arXiv:2312.04823 (ICMLW 2023,
CISS 2024); official code github.com/ChenLiu-1996/DiffusionSpectralEntropy
(`dse_dsmi/diffusion.py`, `dse.py`, `dsmi.py`; read at dc20ffd).

Diffusion operator of a point cloud `Z [n, D]`: Gaussian affinities
`G_ij = exp(-|z_i - z_j|^2 / (2 sigma^2)) / (sigma sqrt(2 pi))`, the
anisotropic (Coifman-Lafon) kernel `K = G_ij / (q_i q_j)^alpha` with
`q = G 1`, and the row-stochastic `P = diag(K 1)^-1 K`. Its eigenvalues are
those of the symmetric `S = d^-1/2 K d^-1/2` (`d = K 1`), taken with `eigh`.

    DSE(Z) = -sum_i a_i log2 a_i,   a_i = |lambda_i|^t / sum_j |lambda_j|^t

(in bits, every `a_i` plus float64 eps as the official code). The official
eigenvalue path computes `S` with alpha = 0 (its "anisotropic" matrix
`diag(q)^-1/2 G diag(q)^-1/2` is the symmetric conjugate of the plain random
walk `diag(q)^-1 G`), so `alpha=0.0` is our default; alpha = 0.5 / 1 are
the density-normalised operators.

DSMI with discrete labels Y, as the official code:

    DSMI(Z; Y) = sum_y p(y) [ mean_r DSE(Z*_{y,r}) - DSE(Z | Y = y) ]

where `Z*_{y,r}` (r = 1..R, R = 5) are random subsets of all of Z with as
many points as class y (so both entropies see the same n). Subsets of
different sizes are padded to one static size `m` with a mask (masked
points are cut out of the graph and contribute nothing), so one jitted call
serves every class.

The binned Shannon entropy baseline (the official `classic_shannon_entropy`):
min-max scale each dimension, `np.digitize` into `bins` bins per dimension,
entropy (bits) of the occupied joint bins.

Cost: one dense `eigh` per entropy, O(n^3) as the official code; no
subsampling here (the official `max_N = 10000` random subsample only acts
on larger clouds; callers pass at most the points they want).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

# The official code adds numpy's float64 eps to every probability.
EPS = float(np.finfo(np.float64).eps)


def _check_points(z: jax.Array, name: str = "Z") -> None:
  if z.ndim != 2:
    raise ValueError(f"{name} must be a point cloud [n, D], got shape "
                     f"{tuple(z.shape)}")


def gaussian_affinity(z: jax.Array, sigma: float | jax.Array) -> jax.Array:
  """`[n, n]` Gaussian kernel `exp(-d^2 / 2 sigma^2) / (sigma sqrt(2 pi))`.

  Args:
    z: `[n, D]` points. sigma: kernel bandwidth (traced).
  """
  _check_points(z)
  sq = jnp.sum(z * z, axis=1)
  d2 = jnp.maximum(sq[:, None] + sq[None, :] - 2.0 * jnp.matmul(
      z, z.T, precision=jax.lax.Precision.HIGHEST), 0.0)
  d2 = d2 * (1.0 - jnp.eye(len(z), dtype=z.dtype))   # exact 0 diagonal
  return jnp.exp(-d2 / (2.0 * sigma ** 2)) / (sigma * jnp.sqrt(2.0 * jnp.pi))


def _symmetric_operator(g: jax.Array, alpha: float | jax.Array,
                        mask: jax.Array | None) -> jax.Array:
  """`[n, n]` `S = d^-1/2 K d^-1/2` sharing P's spectrum; masked rows 0."""
  if mask is not None:
    m = mask.astype(g.dtype)
    g = g * m[:, None] * m[None, :]
  q = jnp.sum(g, axis=1)
  qa = jnp.where(q > 0, q, 1.0) ** (-alpha)
  k = g * qa[:, None] * qa[None, :]
  d = jnp.sum(k, axis=1)
  dinv = jnp.where(d > 0, jax.lax.rsqrt(jnp.where(d > 0, d, 1.0)), 0.0)
  s = k * dinv[:, None] * dinv[None, :]
  return 0.5 * (s + s.T)


@jax.jit
def diffusion_operator(z: jax.Array, sigma: float | jax.Array,
                       alpha: float | jax.Array = 0.0) -> jax.Array:
  """Row-stochastic diffusion matrix `P [n, n]` of the points `z [n, D]`.

  Args:
    z: `[n, D]` points. sigma: Gaussian bandwidth. alpha: anisotropic
      density normalisation (0: random walk on G, 1: Laplace-Beltrami).
  """
  g = gaussian_affinity(z, sigma)
  q = jnp.sum(g, axis=1)
  k = g / (q[:, None] * q[None, :]) ** alpha
  return k / jnp.sum(k, axis=1, keepdims=True)


def diffusion_eigenvalues(z: jax.Array, sigma: float | jax.Array,
                          alpha: float | jax.Array = 0.0,
                          mask: jax.Array | None = None) -> jax.Array:
  """`[n]` eigenvalues (ascending) of P, from the symmetric conjugate.

  Args:
    z: `[n, D]` points. sigma, alpha: as `diffusion_operator`.
    mask: optional `[n]` bool; False points are removed from the graph
      (their eigenvalues are 0).
  """
  s = _symmetric_operator(gaussian_affinity(z, sigma), alpha, mask)
  return jnp.linalg.eigvalsh(s)


def spectral_entropy(eigvals: jax.Array, t: float | jax.Array = 1.0,
                     num_valid: jax.Array | int | None = None) -> jax.Array:
  """Entropy (bits) of `|lambda|^t` normalised, with the official eps.

  Args:
    eigvals: `[n]` eigenvalues. t: diffusion time (traced).
    num_valid: how many entries are real points (the rest are masked zeros,
      whose eps terms are taken back out); default n.
  """
  a = jnp.abs(eigvals) ** t
  p = a / jnp.sum(a) + EPS
  h = -jnp.sum(p * jnp.log2(p))
  if num_valid is None:
    return h
  pad = eigvals.shape[0] - num_valid
  return h + pad * EPS * jnp.log2(EPS)


@jax.jit
def dse(z: jax.Array, sigma: float | jax.Array = 10.0,
        t: float | jax.Array = 1.0, alpha: float | jax.Array = 0.0,
        mask: jax.Array | None = None) -> jax.Array:
  """Diffusion spectral entropy (bits) of `z [n, D]` (masked points out).

  Args:
    z: `[n, D]` points. sigma: bandwidth (official default 10). t: diffusion
      time (official default 1). alpha: anisotropic normalisation (official
      eigenvalue path: 0). mask: optional `[n]` bool of the points to use.
  """
  z = jnp.asarray(z)
  lam = diffusion_eigenvalues(z, sigma, alpha, mask)
  n_valid = None if mask is None else jnp.sum(mask)
  return spectral_entropy(lam, t, n_valid)


def _subset_dse(z, idx, mask, sigma, t, alpha):
  """DSE of the masked points `z[idx]` (idx `[m]`, mask `[m]`)."""
  return dse(z[idx], sigma, t, alpha, mask)


@jax.jit
def dsmi_from_subsets(z: jax.Array, class_idx: jax.Array,
                      class_mask: jax.Array, ref_idx: jax.Array,
                      sigma: float | jax.Array = 10.0,
                      t: float | jax.Array = 1.0,
                      alpha: float | jax.Array = 0.0) -> dict[str, jax.Array]:
  """DSMI from given class members and reference subsets.

  Args:
    z: `[n, D]` points.
    class_idx: `[C, m]` int indices of each class's points (padded).
    class_mask: `[C, m]` bool, True for the class's real points; its row
      sum is n_y (every class non-empty).
    ref_idx: `[C, R, m]` indices of R random subsets of all points per class
      (the first n_y of each row are used, the same mask as the class).
    sigma, t, alpha: as `dse`.

  Returns:
    `dsmi` (bits), `conditional` = sum_y p(y) DSE(Z|y), `reference` =
    sum_y p(y) mean_r DSE(Z*_{y,r}), per-class `class_dse [C]`,
    `ref_dse [C]`.
  """
  per = jax.vmap(_subset_dse, in_axes=(None, 0, 0, None, None, None))
  cond = per(z, class_idx, class_mask, sigma, t, alpha)
  c, r, m = ref_idx.shape
  mask_r = jnp.repeat(class_mask, r, axis=0)
  ref = per(z, ref_idx.reshape(c * r, m), mask_r, sigma, t, alpha)
  ref = ref.reshape(c, r).mean(axis=1)
  counts = jnp.sum(class_mask, axis=1).astype(z.dtype)
  p = counts / jnp.sum(counts)
  return {"dsmi": jnp.sum(p * (ref - cond)), "conditional": jnp.sum(p * cond),
          "reference": jnp.sum(p * ref), "class_dse": cond, "ref_dse": ref}


def class_subsets(labels: np.ndarray, multiple: int = 1
                  ) -> tuple[np.ndarray, np.ndarray]:
  """Host: `(class_idx [C, m], class_mask [C, m])` of the present classes.

  Args:
    labels: `[n]` int labels; classes are the sorted unique values.
    multiple: m = the largest class count rounded up to this multiple
      (fewer shapes, fewer compilations; the padding is masked).
  """
  labels = np.asarray(labels).reshape(-1)
  if labels.size == 0 or not np.issubdtype(labels.dtype, np.integer):
    raise ValueError(f"labels must be a non-empty int array [n], got dtype "
                     f"{labels.dtype} and shape {labels.shape}")
  classes, counts = np.unique(labels, return_counts=True)
  m = min(-(-int(counts.max()) // multiple) * multiple, len(labels))
  idx = np.zeros((len(classes), m), np.int32)
  mask = np.zeros((len(classes), m), bool)
  for i, c in enumerate(classes):
    members = np.flatnonzero(labels == c)
    idx[i, :len(members)] = members
    mask[i, :len(members)] = True
  return idx, mask


@functools.partial(jax.jit, static_argnames=("n", "num_classes_present", "m",
                                             "repetitions"))
def _reference_indices(key, n, num_classes_present, m, repetitions):
  keys = jax.random.split(key, num_classes_present * repetitions)
  perms = jax.vmap(lambda k: jax.random.permutation(k, n)[:m])(keys)
  return perms.reshape(num_classes_present, repetitions, m)


def dsmi(z: jax.Array, labels: np.ndarray, key: jax.Array,
         sigma: float = 10.0, t: float = 1.0, alpha: float = 0.0,
         repetitions: int = 5, multiple: int = 16) -> dict[str, jax.Array]:
  """DSMI(Z; Y) (bits) of points `z [n, D]` and discrete labels `[n]`.

  The reference subsets are drawn with `key` (the official code draws them
  with Python's `random`; `dsmi_from_subsets` takes any draw). Subsets are
  padded to a multiple of `multiple` points (masked).
  """
  _check_points(jnp.asarray(z))
  labels = np.asarray(labels).reshape(-1)
  if len(labels) != z.shape[0]:
    raise ValueError(f"labels has {len(labels)} entries for {z.shape[0]} "
                     "points: expected one label per point")
  if repetitions < 1:
    raise ValueError(f"repetitions={repetitions}: expected >= 1")
  idx, mask = class_subsets(labels, multiple)
  ref = _reference_indices(key, z.shape[0], idx.shape[0], idx.shape[1],
                           repetitions)
  return dsmi_from_subsets(z, idx, mask, ref, sigma, t, alpha)


@functools.partial(jax.jit, static_argnames=("bins",))
def binned_entropy(z: jax.Array, bins: int = 2) -> jax.Array:
  """Shannon entropy (bits) of `z [n, D]` binned `bins` per dimension.

  The official `classic_shannon_entropy`: per-dimension min-max scaling,
  `np.digitize(x, linspace(0, 1, bins + 1)[:-1])`, counts of the distinct
  bin vectors, `-sum (p + eps) log2 (p + eps)` over the occupied bins. At
  most log2(n): in high dimension every point sits alone and it saturates.
  O(n^2 D) (bin vectors compared by one matmul).
  """
  _check_points(z)
  if z.shape[1] * (bins + 1) ** 2 >= 2 ** 24:
    raise ValueError(f"binned_entropy: D={z.shape[1]} with bins={bins} is "
                     "too large for the exact float32 comparison "
                     "(need D * (bins + 1)^2 < 2^24)")
  n = z.shape[0]
  lo, hi = jnp.min(z, axis=0), jnp.max(z, axis=0)
  x = (z - lo) / (hi - lo)   # a constant dimension gives nan, as numpy
  edges = jnp.linspace(0.0, 1.0, bins + 1)[:-1]
  codes = jnp.sum(x[..., None] >= edges, axis=-1)
  codes = jnp.where(jnp.isnan(x), bins, codes).astype(jnp.float32)
  # Equal bin vectors <=> squared distance 0; small integers, so the matmul
  # is exact in float32 while D * (bins + 1)^2 < 2^24.
  sq = jnp.sum(codes * codes, axis=1)
  same = (sq[:, None] + sq[None, :] - 2.0 * jnp.matmul(
      codes, codes.T, precision=jax.lax.Precision.HIGHEST)) == 0.0
  first = jnp.argmax(same, axis=1) == jnp.arange(n)   # first of its bin
  p = jnp.sum(same, axis=1) / n
  terms = jnp.where(first, -(p + EPS) * jnp.log2(p + EPS), 0.0)
  return jnp.sum(terms)

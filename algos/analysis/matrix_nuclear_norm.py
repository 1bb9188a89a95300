"""Matrix Nuclear-Norm (MNN) and Matrix Entropy of hidden-state matrices.

Paper: Large Language Model Evaluation via Matrix Nuclear-Norm, Li, Xia,
Chang, Wu, 2024, arXiv:2410.10672.
Official code: https://github.com/MLGroupJLU/MatrixNuclearNorm
(`code/MNN.py`, `code/compute_mnn_time.py`, `code/compute_entropy_time.py`).

A language model's hidden states for one text form `R [T, d]` (T tokens).
Both metrics first centre the columns and L2-normalise the rows
(`normalize_rows`). Then

* MNN approximates the nuclear norm ||R||_* (a convex surrogate of rank) by
  the L_{1,2} norm: the sum of the D = min(T, d) largest column L2 norms.
  The official scripts report MNN / T (`mnn_score`). No SVD: O(T d).
* Matrix Entropy (the baseline) is the von Neumann entropy of the
  trace-normalised Gram matrix A = Z^T Z / T `[d, d]`, divided by log d:
  an eigen-decomposition, O(d^3) (plus the O(T d^2) product).

Lower values mean more compressed representations; the paper reports both
falling as model size grows. Functions take one matrix; `jax.vmap` them
over a batch of texts. Rows of all zeros (padding) are allowed through the
`row_mask` arguments: they are left out of the mean and the norms.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

_TINY = 1e-12


def _mask(r: jax.Array, row_mask: jax.Array | None) -> jax.Array:
  """`[T]` float mask (all ones when None)."""
  if row_mask is None:
    return jnp.ones(r.shape[0], r.dtype)
  return row_mask.astype(r.dtype)


def normalize_rows(r: jax.Array, row_mask: jax.Array | None = None
                   ) -> jax.Array:
  """Centre the columns over the counted rows, then unit-L2 rows.

  Args:
    r: `[T, d]` hidden states of one text.
    row_mask: optional `[T]` bool; False rows are zeroed and not counted.

  Returns:
    `[T, d]`; counted rows have unit norm (as the official `normalize`;
    a row equal to the column mean, norm 0, is left at 0 instead of NaN).
  """
  m = _mask(r, row_mask)
  n = jnp.maximum(jnp.sum(m), 1.0)
  mean = jnp.sum(r * m[:, None], axis=0) / n
  c = (r - mean) * m[:, None]
  norms = jnp.linalg.norm(c, axis=1, keepdims=True)
  return c / jnp.maximum(norms, _TINY)


def nuclear_norm_l12(x: jax.Array, num_terms: int | None = None) -> jax.Array:
  """The L_{1,2} nuclear-norm approximation: the `num_terms` largest
  column L2 norms of `x [T, d]`, summed (default min(T, d))."""
  d = min(x.shape) if num_terms is None else num_terms
  if not 1 <= d <= x.shape[1]:
    raise ValueError(f"num_terms={num_terms} must be in [1, {x.shape[1]}] "
                     f"for a [{x.shape[0]}, {x.shape[1]}] matrix")
  col = jnp.sqrt(jnp.sum(jnp.square(x), axis=0))
  return jnp.sum(jax.lax.top_k(col, d)[0])


def matrix_nuclear_norm(r: jax.Array, row_mask: jax.Array | None = None,
                        num_terms: int | None = None) -> jax.Array:
  """MNN of one hidden-state matrix `r [T, d]`: normalise, then
  `nuclear_norm_l12` (the official `normalize_and_compute_...`).

  With a `row_mask` the default number of terms is min(counted rows, d),
  so a padded matrix scores as its unpadded rows would."""
  x = normalize_rows(r, row_mask)
  if row_mask is None or num_terms is not None:
    return nuclear_norm_l12(x, num_terms)
  col = jnp.sort(jnp.sqrt(jnp.sum(jnp.square(x), axis=0)))[::-1]
  d = jnp.minimum(jnp.sum(row_mask.astype(jnp.int32)), x.shape[1])
  return jnp.sum(jnp.where(jnp.arange(x.shape[1]) < d, col, 0.0))


def mnn_score(r: jax.Array, row_mask: jax.Array | None = None) -> jax.Array:
  """MNN divided by the number of counted tokens, as the official scripts
  report it (`mnn / len(token_ids)`)."""
  t = jnp.sum(_mask(r, row_mask))
  return matrix_nuclear_norm(r, row_mask) / jnp.maximum(t, 1.0)


def gram_spectrum(r: jax.Array, row_mask: jax.Array | None = None,
                  method: str = "eigh") -> jax.Array:
  """Eigenvalues `[d]` of A / tr(A), A = Z^T Z / T, Z = normalised rows.

  method "eigh" uses the symmetric eigensolver; "svd" the singular values
  (what the official `cal_entropy` calls; equal for a PSD matrix, slower).
  """
  z = normalize_rows(r, row_mask)
  t = jnp.maximum(jnp.sum(_mask(r, row_mask)), 1.0)
  a = z.T @ z / t
  a = a / jnp.trace(a)
  if method == "eigh":
    return jnp.clip(jnp.linalg.eigvalsh(a), 0.0, None)
  if method == "svd":
    return jnp.linalg.svd(a, compute_uv=False)
  raise ValueError(f"method={method!r}; allowed: 'eigh', 'svd'")


def matrix_entropy(r: jax.Array, row_mask: jax.Array | None = None,
                   method: str = "eigh") -> jax.Array:
  """Normalised Matrix Entropy of `r [T, d]`: -sum(l log l) / log d over
  the spectrum of `gram_spectrum` (0 log 0 = 0, as `nansum`)."""
  lam = gram_spectrum(r, row_mask, method)
  ent = -jnp.sum(jnp.where(lam > 0, lam * jnp.log(jnp.where(lam > 0, lam,
                                                            1.0)), 0.0))
  return ent / jnp.log(r.shape[1])


def batch_scores(hidden: jax.Array, row_mask: jax.Array | None = None
                 ) -> dict[str, jax.Array]:
  """Per-text `{"mnn": [B], "matrix_entropy": [B]}` of `hidden [B, T, d]`
  (row_mask `[B, T]`), each text's matrix scored on its own."""
  if row_mask is None:
    row_mask = jnp.ones(hidden.shape[:2], bool)
  return {"mnn": jax.vmap(mnn_score)(hidden, row_mask),
          "matrix_entropy": jax.vmap(matrix_entropy)(hidden, row_mask)}

"""Sinkhorn-Knopp pseudo-labels with equal cluster sizes (SwAV, UNO).

SwAV (Caron et al. 2020, arXiv:2006.09882) and UNO (Fini et al. 2021,
arXiv:2108.08536; official code DonkeyShot21/UNO `utils/sinkhorn_knopp.py`)
turn a batch's logits `[b, K]` into soft assignments whose clusters are
equally used: starting from `Q = exp(logits / epsilon)`, alternately
normalise every cluster (column) to mass `1/K` and every example (row) to
mass `1/b`, a fixed small number of times (3), then scale rows to sum to 1.

Why not ott-jax's `Sinkhorn`: the papers' pseudo-labels are this
*truncated* iteration (3 steps from the kernel, rows normalised last), not
the converged entropic plan ott solves for (convergence checks every
`inner_iterations`, dual potentials, its own update order). With 3 steps
the two differ, and parity with the official code is what matters; the
converged limit is the same plan, which `tests/algos/discovery/
test_sinkhorn.py` checks against ott-jax (`num_iters` large). The log-domain
form below is the same iteration without overflow at `epsilon = 0.05`.
Under data parallelism the batch sums are over the global batch (GSPMD).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


@functools.partial(jax.jit, static_argnames="num_iters")
def sinkhorn_knopp(logits: jax.Array, epsilon: float | jax.Array = 0.05,
                   num_iters: int = 3, mask: jax.Array | None = None
                   ) -> jax.Array:
  """Equipartitioned soft assignments (no gradient).

  Args:
    logits: `[b, K]` scores of `b` examples for `K` clusters.
    epsilon: entropic temperature (UNO: 0.05).
    num_iters: column/row normalisation rounds (static; UNO, SwAV: 3).
    mask: optional bool `[b]`: rows that take part (padding rows get zero
      mass and zero output).

  Returns:
    float32 `[b, K]` rows summing to 1; each column sums to about `b / K`
    (exactly, as `num_iters` grows).
  """
  logq = jax.lax.stop_gradient(logits).astype(jnp.float32) / epsilon
  b, k = logq.shape
  if mask is not None:
    # A finite floor (not -inf): padding rows stay at zero mass without
    # the nan of -inf - -inf in their own row normalisation.
    logq = jnp.where(mask[:, None], logq, -1e30)
    b = jnp.sum(mask).astype(jnp.float32)
  def one_round(_, logq):
    logq = logq - jax.nn.logsumexp(logq, axis=0, keepdims=True) - jnp.log(k)
    logq = logq - jax.nn.logsumexp(logq, axis=1, keepdims=True) - jnp.log(b)
    return logq if mask is None else jnp.where(mask[:, None], logq, -1e30)

  logq = jax.lax.fori_loop(0, num_iters, one_round, logq)
  q = jnp.exp(logq) * b
  return q if mask is None else jnp.where(mask[:, None], q, 0.0)

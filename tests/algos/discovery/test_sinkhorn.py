"""Sinkhorn-Knopp pseudo-labels: UNO's iteration, marginals, ott-jax."""

import jax
import jax.numpy as jnp
import numpy as np
from ott.geometry import geometry
from ott.problems.linear import linear_problem
from ott.solvers.linear import sinkhorn as ott_sinkhorn

from algos.discovery import sinkhorn


def _uno_numpy(logits, epsilon, num_iters):
  """UNO utils/sinkhorn_knopp.py, written out in float64 numpy."""
  q = np.exp(logits / epsilon).T           # [K, B]
  k, b = q.shape
  q /= q.sum()
  for _ in range(num_iters):
    q /= q.sum(1, keepdims=True)
    q /= k
    q /= q.sum(0, keepdims=True)
    q /= b
  return (q * b).T


def test_equals_the_official_iteration_and_rows_sum_to_one():
  logits = np.random.default_rng(0).normal(size=(12, 5)).astype(np.float32)
  q = np.asarray(sinkhorn.sinkhorn_knopp(jnp.asarray(logits), 0.5, 3))
  np.testing.assert_allclose(q, _uno_numpy(logits.astype(np.float64), 0.5,
                                           3), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(q.sum(1), 1.0, rtol=1e-5)


def test_columns_equipartition_at_convergence_and_match_ott():
  rng = np.random.default_rng(1)
  logits = rng.normal(size=(16, 4)).astype(np.float32)
  q = np.asarray(sinkhorn.sinkhorn_knopp(jnp.asarray(logits), 0.5, 300))
  np.testing.assert_allclose(q.sum(0), 16 / 4, rtol=1e-4)
  # The converged plan is ott-jax's entropic OT plan for cost -logits with
  # uniform marginals (times b).
  geom = geometry.Geometry(cost_matrix=-jnp.asarray(logits), epsilon=0.5)
  out = jax.jit(ott_sinkhorn.Sinkhorn(threshold=1e-7, max_iterations=2000))(
      linear_problem.LinearProblem(geom))
  np.testing.assert_allclose(q, np.asarray(out.matrix) * 16, atol=1e-4)


def test_masked_rows_get_no_mass_and_do_not_change_the_rest():
  logits = np.random.default_rng(2).normal(size=(8, 3)).astype(np.float32)
  mask = np.array([1, 1, 1, 1, 1, 1, 0, 0], bool)
  padded = logits.copy()
  padded[~mask] = 50.0    # padding rows with large scores must not count
  q = np.asarray(sinkhorn.sinkhorn_knopp(jnp.asarray(padded), 0.5, 3,
                                         jnp.asarray(mask)))
  ref = np.asarray(sinkhorn.sinkhorn_knopp(jnp.asarray(logits[mask]), 0.5, 3))
  np.testing.assert_allclose(q[mask], ref, rtol=1e-5, atol=1e-6)
  assert np.all(q[~mask] == 0)

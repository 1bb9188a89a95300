"""Sparsity-constrained OT: POT oracle parity, k = 1 = EMD, k >= n = L2 OT."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import ot  # POT: test-only oracle
import pytest
from ott.geometry import pointcloud

from algos.ot import sparse_ot

FORMS = ("semi_dual", "dual")
_POT = {"semi_dual": ot.smooth.smooth_ot_semi_dual,
        "dual": ot.smooth.smooth_ot_dual}


# One compilation per (k, formulation) shared by the tests (12 x 12 float32).
_solve = jax.jit(sparse_ot.solve_cost_matrix, static_argnums=(1,),
                 static_argnames=("formulation",))


def _clouds(seed, n=12, m=12):
  rng = np.random.default_rng(seed)
  x, y = rng.normal(size=(n, 2)), rng.normal(size=(m, 2)) + 1.0
  cost = ot.dist(x, y)
  return x, y, cost / cost.max()


def _pot_plan(form, cost, k, gamma):
  n, m = cost.shape
  a, b = np.full(n, 1.0 / n), np.full(m, 1.0 / m)
  # POT writes into its inputs (delta_Omega zeroes entries): pass copies.
  return _POT[form](a.copy(), b.copy(), cost.copy(), gamma,
                    reg_type="sparsity_constrained", max_nz=k)


def test_sparse_simplex_projection_matches_pot():
  rng = np.random.default_rng(0)
  v = rng.normal(size=(7, 5))
  for k in (1, 2, 5):
    ours = np.asarray(sparse_ot.sparse_simplex_projection(jnp.asarray(v.T),
                                                          k)).T
    theirs = ot.utils.projection_sparse_simplex(v.copy(), k, axis=0)
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    assert (np.count_nonzero(ours, axis=0) <= k).all()
    np.testing.assert_allclose(ours.sum(0), 1.0, atol=1e-6)


def test_block_top_k_and_plan_equal_the_sort_based_ones():
  # n = 203 (not a multiple of the block size) takes the blocked selection;
  # column 0 has ties. The selected rows and the semi-dual plan must equal
  # those of `lax.top_k` on whole columns and the dense projection.
  rng = np.random.default_rng(6)
  n, m, k, gamma = 203, 7, 3, 0.5
  assert sparse_ot._block_size(n, k)
  cost = rng.random((n, m)).astype(np.float32)
  cost[[5, 77, 150], 0] = cost[:, 0].min()
  f = jnp.asarray(rng.normal(size=n) * 0.01, jnp.float32)
  b = jnp.full((m,), 1.0 / m, jnp.float32)

  @jax.jit
  def both(f, cost):
    x = (f[:, None] - cost).T
    dense = sparse_ot.sparse_simplex_projection(x / (gamma * b[:, None]), k)
    return (sparse_ot._column_top_k(f, cost, k), jax.lax.top_k(x, k)[1],
            sparse_ot._semi_dual_plan(f, cost, b, gamma, k),
            (dense * b[:, None]).T)

  rows, ref, plan, dense = both(f, jnp.asarray(cost))
  np.testing.assert_array_equal(np.sort(rows, 1), np.sort(ref, 1))
  np.testing.assert_allclose(plan, dense, atol=1e-7)


@pytest.mark.parametrize("form", FORMS)
def test_matches_pot_when_solvers_converge(form):
  # gamma = 1 and k = 11 >= the unconstrained support (<= 7 here): a smooth
  # problem that both L-BFGS solvers solve accurately, so plans must agree.
  # (POT's dual needs k < n.)
  _, _, cost = _clouds(0)
  out = _solve(jnp.asarray(cost, jnp.float32), 11, 1.0,
                                    formulation=form)
  pot = _pot_plan(form, cost, 11, 1.0)
  np.testing.assert_allclose(np.asarray(out.plan), pot, atol=2e-4)


@pytest.mark.parametrize("form", FORMS)
def test_binding_constraint_cardinality_and_dual_value(form):
  # k = 2 binds: both solvers stop at a kink of a non-smooth concave
  # objective; ours must satisfy the constraint and reach POT's dual value.
  _, _, cost = _clouds(1)
  k, gamma = 2, 1.0
  out = _solve(jnp.asarray(cost, jnp.float32), k, gamma,
                                    formulation=form)
  plan = np.asarray(out.plan)
  assert (np.count_nonzero(plan, axis=0) <= k).all()
  if form == "semi_dual":   # column marginals are exact in the semi-dual
    np.testing.assert_allclose(plan.sum(0), 1 / 12, atol=1e-6)
  pot = _pot_plan(form, cost, k, gamma)
  pot_cost = (pot * cost).sum() + 0.5 * gamma * (pot**2).sum()
  ours_cost = float(out.primal_cost)
  assert abs(ours_cost - pot_cost) < 0.03 * pot_cost


@pytest.mark.parametrize("form", FORMS)
def test_k1_is_exact_ot(form):
  _, _, cost = _clouds(2)
  out = _solve(jnp.asarray(cost, jnp.float32), 1, 0.1,
                                    formulation=form)
  emd = ot.emd2(np.full(12, 1 / 12), np.full(12, 1 / 12), cost)
  np.testing.assert_allclose(float(out.transport_cost), emd, rtol=1e-4)
  assert (np.count_nonzero(np.asarray(out.plan), axis=0) <= 1).all()


def test_large_k_is_quadratic_ot():
  _, _, cost = _clouds(3)
  out = _solve(jnp.asarray(cost, jnp.float32), 12, 1.0)
  a = np.full(12, 1 / 12)
  l2 = ot.smooth.smooth_ot_dual(a.copy(), a.copy(), cost.copy(), 1.0,
                                reg_type="l2")
  np.testing.assert_allclose(float(out.transport_cost), (l2 * cost).sum(),
                             rtol=1e-3)


def test_gradients_match_finite_differences():
  with jax.enable_x64(True):
    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.normal(size=(6, 2)))
    y = jnp.asarray(rng.normal(size=(6, 2)) + 1.0)

    def value(x, form):
      geom = pointcloud.PointCloud(x, y)
      # ftol=0: finite differences need the solution to 1e-10, not the
      # default stop on a 1e-9 relative improvement.
      return sparse_ot.solve(geom, 3, 2.0, formulation=form, tol=1e-10,
                             ftol=0.0).transport_cost

    for form in FORMS:
      value_fn = jax.jit(lambda x, form=form: value(x, form))
      grad = jax.jit(jax.grad(value_fn))(x)
      d = jnp.asarray(rng.normal(size=x.shape))
      eps = 1e-5
      fd = (value_fn(x + eps * d) - value_fn(x - eps * d)) / (2 * eps)
      np.testing.assert_allclose(float(jnp.vdot(grad, d)), float(fd),
                                 rtol=1e-3, atol=1e-6)


def test_vmap_over_problems_and_no_retrace_on_gamma():
  rng = np.random.default_rng(5)
  costs = jnp.asarray(rng.random((3, 6, 6)), jnp.float32)

  @jax.jit
  @chex.assert_max_traces(n=1)
  def batched(costs, gamma):
    return jax.vmap(lambda c: sparse_ot.solve_cost_matrix(c, 3, gamma))(costs)

  first = batched(costs, jnp.float32(1.0))
  batched(costs, jnp.float32(0.5))   # new gamma, same trace
  single = jax.jit(sparse_ot.solve_cost_matrix, static_argnums=(1,))(
      costs[1], 3, 1.0)
  np.testing.assert_allclose(first.dual_value[1], single.dual_value,
                             rtol=1e-4)


def test_bad_inputs_raise():
  cost = jnp.ones((3, 4))
  with pytest.raises(ValueError, match="k=0"):
    sparse_ot.solve_cost_matrix(cost, 0)
  with pytest.raises(ValueError, match="formulation"):
    sparse_ot.solve_cost_matrix(cost, 1, formulation="primal")
  with pytest.raises(ValueError, match="shapes"):
    sparse_ot.solve_cost_matrix(cost, 1, a=jnp.ones(4) / 4)

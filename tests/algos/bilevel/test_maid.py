"""MAID: lower solver accuracy, hypergradients vs the exact solution and
finite differences, and MAID / HOAG reaching the quadratic's optimum."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from algos.bilevel import maid
from algos.bilevel import problems


@pytest.fixture(scope="module")
def quad():
  return problems.quadratic(seed=0, n=60, m=4)


def test_lower_solve_reaches_its_tolerance(quad):
  theta = jnp.ones(4)
  for eps in (1e-2, 1e-4):
    x, k = maid.lower_solve(quad.problem, theta, jnp.zeros(4), eps)
    assert 0 < int(k) < 2000
    assert float(jnp.linalg.norm(x - quad.x_star(theta))) <= eps


def test_hypergradient_matches_the_exact_one_on_the_quadratic(quad):
  theta = jnp.linspace(0.5, 1.5, 4)
  x = quad.x_star(theta)
  h, _ = maid.hypergradient(quad.problem, theta, x, 1e-6)
  np.testing.assert_allclose(h, quad.hypergradient(theta), rtol=1e-3)
  # Inexact x: the error stays within the bound's first-order terms.
  x_eps, _ = maid.lower_solve(quad.problem, theta, jnp.zeros(4), 1e-2)
  h_eps, _ = maid.hypergradient(quad.problem, theta, x_eps, 1e-2)
  assert float(jnp.linalg.norm(h_eps - quad.hypergradient(theta))) < (
      0.1 * float(jnp.linalg.norm(quad.hypergradient(theta))))


def test_hypergradient_matches_finite_differences_on_logistic_regression():
  problem, _ = problems.logistic(num_train=300)
  theta = 0.5 * jax.random.normal(jax.random.PRNGKey(0), (64, 10))
  solve = lambda th: maid.lower_solve(problem, th, jnp.zeros((64, 10)),
                                      1e-4, 5000)[0]
  h, _ = maid.hypergradient(problem, theta, solve(theta), 1e-6)
  direction = jax.random.normal(jax.random.PRNGKey(1), (64, 10))
  direction = direction / jnp.linalg.norm(direction)
  step = 0.05
  fd = (problem.upper(solve(theta + step * direction))
        - problem.upper(solve(theta - step * direction))) / (2 * step)
  np.testing.assert_allclose(float(jnp.vdot(h, direction)), float(fd),
                             rtol=0.03)


def test_maid_and_hoag_reach_the_quadratic_optimum(quad):
  start = quad.problem.upper(quad.x_star(jnp.ones(4)))
  _, hist = maid.maid(quad.problem, jnp.ones(4), jnp.zeros(4), eps=1e-2,
                      delta=1e-2, beta=1e-3, max_iter=40)
  gap = lambda f: (f - quad.f_star) / (float(start) - quad.f_star)
  assert gap(hist["loss"][-1]) < 0.2     # 0.003 after 300 iterations
  assert all(b <= a + 1e-6 * abs(a) for a, b in zip(hist["loss"],
                                                    hist["loss"][1:]))
  _, hist = maid.hoag(quad.problem, jnp.ones(4), jnp.zeros(4), eps=1e-2,
                      max_iter=40)
  assert gap(min(hist["loss"])) < 0.1


def test_bad_accuracy_schedule_is_refused(quad):
  with pytest.raises(ValueError, match="allowed"):
    maid.hoag(quad.problem, jnp.ones(4), jnp.zeros(4), eps=1e-2,
              schedule="linear")


def test_bound_constant_b_x_is_the_mixed_derivative_on_the_quadratic(quad):
  # d/dx <grad_theta g(x, theta), h> = A2^T A3 h for g = 1/2 ||A2 x + A3
  # theta - b2||^2: B_x is its largest entry; L_B = L_{A^-1} = 0 (the
  # Jacobian and Hessian do not depend on x).
  theta, x = jnp.ones(4), quad.x_star(jnp.ones(4))
  h, q = maid.hypergradient(quad.problem, theta, x, 1e-6)
  b_x, lb, la_inv, _ = maid._bound_terms(quad.problem, theta, x, h, q, 1e-6,
                                         jax.random.PRNGKey(0))
  mixed = jax.jacfwd(jax.grad(quad.problem.lower, argnums=1))(x, theta)
  np.testing.assert_allclose(float(b_x), float(jnp.max(jnp.abs(
      mixed.T @ h))), rtol=1e-4)
  assert float(lb) < 1e-3 and float(la_inv) < 1e-3


def test_hoag_tolerance_schedules_and_rejection():
  tol = maid.hoag_tolerance
  assert tol("quadratic", 0, 0.1, 0.1, 0.9) == 0.1
  assert tol("quadratic", 3, 0.1, 0.1, 0.9) == pytest.approx(0.1 / 16)
  assert tol("quadratic", 3, 1e-4, 0.1, 0.9) == 1e-4   # halvings persist
  assert tol("cubic", 1, 0.1, 0.1, 0.9) == pytest.approx(0.1 / 8)
  assert tol("geometric", 5, 0.1, 0.1, 0.9) == pytest.approx(0.09)
  assert tol("fixed", 5, 0.1, 0.1, 0.9) == 0.1
  h = jnp.array([3.0, 4.0])
  state = maid.HoagState(1, 0.1, 0.1, 2.0, 1.0, jnp.ones(2), jnp.zeros(2))
  up = maid.hoag_update(state, 2.0, h, schedule="quadratic", rho=0.9,
                        clip=1e3)                 # loss doubled: rejected
  np.testing.assert_allclose(up.theta, jnp.zeros(2))
  assert up.lip_lambda == 4.0 and up.eps == pytest.approx(0.1 / 8)
  state = state._replace(lip_lambda=100.0)       # sufficient decrease:
  up = maid.hoag_update(state, 0.5, h, schedule="fixed", rho=0.9, clip=1e3)
  np.testing.assert_allclose(up.theta, jnp.ones(2) - h / 95, rtol=1e-6)
  assert up.loss_old == 0.5 and up.eps == 0.1     # step 1/0.95 longer


def test_hypergradient_matches_finite_differences_on_tv_denoising():
  d = problems.tv_denoising(seed=0, size=8, num_images=2)
  theta = jnp.array([-3.0, -4.0])
  solve = lambda th: maid.lower_solve(d.problem, th, d.noisy, 1e-5, 5000)[0]
  h, _ = maid.hypergradient(d.problem, theta, solve(theta), 1e-7)
  step = 1e-2
  for i in range(2):
    e = jnp.zeros(2).at[i].set(step)
    fd = (d.problem.upper(solve(theta + e))
          - d.problem.upper(solve(theta - e))) / (2 * step)
    np.testing.assert_allclose(float(h[i]), float(fd), rtol=0.02, atol=1e-5)


def test_fixed_accuracy_keeps_eps(quad):
  _, hist = maid.maid(quad.problem, jnp.ones(4), jnp.zeros(4), eps=1e-3,
                      delta=1e-3, beta=1e-3, max_iter=5, fixed_accuracy=True)
  assert len(hist["eps"]) > 2 and set(hist["eps"]) == {1e-3}
  assert hist["loss"][-1] < hist["loss"][1]

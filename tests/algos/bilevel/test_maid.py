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
  theta = -1.0 + 0.5 * jax.random.normal(jax.random.PRNGKey(0), (64, 10))
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

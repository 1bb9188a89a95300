"""SAC's entropy terms against values computed by hand."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from algos.rl import sac


def _log_prob_by_hand(u, mean, std):
  """Gaussian density of u, divided by the tanh Jacobian 1 - tanh(u)^2."""
  gauss = np.exp(-0.5 * ((u - mean) / std) ** 2) / (std * np.sqrt(2 * np.pi))
  return np.sum(np.log(gauss) - np.log(1.0 - np.tanh(u) ** 2), axis=-1)


def test_tanh_gaussian_log_prob_matches_hand_computation():
  # u = 0, N(0, 1): log N = -0.5 log(2 pi) = -0.918939, Jacobian 1.
  lp = sac.tanh_gaussian_log_prob(jnp.zeros((1, 1)), jnp.zeros((1, 1)),
                                  jnp.zeros((1, 1)))
  np.testing.assert_allclose(lp, [-0.9189385], rtol=1e-6)
  # u = 1, N(0.5, 0.5^2): -0.5 - log 0.5 - 0.918939 - log(1 - tanh(1)^2)
  #   = -0.725791 - log(0.419974) = -0.725791 + 0.867562 = 0.141771.
  lp = sac.tanh_gaussian_log_prob(jnp.ones((1, 1)), jnp.full((1, 1), 0.5),
                                  jnp.log(jnp.full((1, 1), 0.5)))
  np.testing.assert_allclose(lp, [0.141771], atol=1e-5)
  rng = np.random.default_rng(0)
  u, m = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
  s = np.exp(rng.normal(size=(5, 3)) * 0.3)
  np.testing.assert_allclose(
      sac.tanh_gaussian_log_prob(u, m, np.log(s)), _log_prob_by_hand(u, m, s),
      rtol=1e-4)


def test_sample_is_bounded_and_its_log_prob_consistent():
  # Not saturated, so that float32 actions can be inverted by arctanh.
  mean = jnp.array([[0.0, 0.5], [-0.5, 0.2]])
  log_std = jnp.array([[-1.0, -0.5], [-1.0, -2.0]])
  a, lp = sac.tanh_gaussian_sample(jax.random.PRNGKey(0), mean, log_std)
  assert np.all(np.abs(a) <= 1.0)
  u = np.arctanh(np.clip(np.asarray(a, np.float64), -1 + 1e-7, 1 - 1e-7))
  np.testing.assert_allclose(lp, _log_prob_by_hand(
      u, np.asarray(mean), np.exp(np.asarray(log_std))), rtol=1e-3)


def test_soft_target():
  next_q = jnp.array([[2.0, 5.0], [3.0, 4.0]])   # min: [2, 4]
  target = sac.soft_target(jnp.array([1.0, 1.0]), jnp.array([0.0, 1.0]),
                           next_q, jnp.array([-1.0, -1.0]), 0.5, 0.9)
  # 1 + 0.9 * (2 + 0.5); absorbing: just the reward.
  np.testing.assert_allclose(target, [3.25, 1.0])
  # Per-sample temperatures.
  target = sac.soft_target(jnp.zeros(2), jnp.zeros(2), next_q,
                           jnp.array([-1.0, -2.0]), jnp.array([0.1, 1.0]), 1.0)
  np.testing.assert_allclose(target, [2.1, 6.0], rtol=1e-6)


def test_critic_loss_sums_the_twin_mses():
  q = jnp.array([[1.0, 2.0], [3.0, 4.0]])
  # (0 + 1) / 2 + (4 + 9) / 2 = 7.
  np.testing.assert_allclose(sac.critic_loss(q, jnp.ones(2)), 7.0)


def test_actor_loss_scalar_and_per_sample_temperature():
  logp = jnp.array([-1.0, 0.0])
  q = jnp.array([[1.0, 2.0], [0.0, 5.0]])  # min: [0, 2]
  np.testing.assert_allclose(sac.actor_loss(logp, q, 0.1), -1.05, rtol=1e-6)
  logp = jnp.array([-1.0, 2.0])
  # mean(0.1 * -1 - 0, 1.0 * 2 - 2) = -0.05
  np.testing.assert_allclose(
      sac.actor_loss(logp, q, jnp.array([0.1, 1.0])), -0.05, rtol=1e-6)


def test_temperature_loss_and_its_gradient():
  logp = jnp.array([-1.0, -3.0])
  loss, grad = jax.value_and_grad(sac.temperature_loss)(
      jnp.float32(0.5), logp, -1.0)
  # -mean(0.5 * (-2, -4)) = 1.5; d/dlog_alpha = -mean(-2, -4) = 3 > 0:
  # the entropy (2) exceeds the target (-1), so descent lowers alpha.
  np.testing.assert_allclose(loss, 1.5)
  np.testing.assert_allclose(grad, 3.0)


def test_polyak():
  out = sac.polyak({"w": jnp.zeros(2)}, {"w": jnp.ones(2)}, 0.25)
  np.testing.assert_allclose(out["w"], [0.25, 0.25])

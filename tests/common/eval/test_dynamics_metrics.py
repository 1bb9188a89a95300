"""D_stsp, D_H, prediction error and Lyapunov exponents on known cases."""

import jax
import jax.numpy as jnp
import numpy as np

from common.eval import dynamics_metrics as dm


def _gauss(seed, n, d, shift=0.0):
  return jax.random.normal(jax.random.PRNGKey(seed), (n, d)) + shift


def test_binned_divergence_matches_a_numpy_histogram_kl():
  x, y = _gauss(0, 4000, 2), _gauss(1, 3000, 2, 0.5)
  ours = dm.state_space_divergence_binned(x, y, n_bins=10)
  xn, yn = np.asarray(x, np.float64), np.asarray(y, np.float64)
  sd = xn.std(0, ddof=1)
  edges = [np.linspace(xn[:, i].min() - 0.1 * sd[i],
                       xn[:, i].max() + 0.1 * sd[i], 11) for i in range(2)]
  hp = np.histogramdd(xn, edges)[0].ravel()
  hq = np.histogramdd(yn, edges)[0].ravel()
  p = (hp + 1e-5) / (hp.sum() + 1e-5 * hp.size)
  q = (hq + 1e-5) / (hq.sum() + 1e-5 * hq.size)
  np.testing.assert_allclose(ours, np.sum(p * np.log(p / q)), rtol=1e-4)


def test_state_space_divergences_are_zero_for_identical_and_grow_with_shift():
  x = _gauss(0, 3000, 3)
  assert float(dm.state_space_divergence(x, x)) == 0.0
  near = dm.state_space_divergence(x, _gauss(1, 3000, 3, 0.3))
  far = dm.state_space_divergence(x, _gauss(1, 3000, 3, 1.0))
  assert 0 < float(near) < float(far)
  assert jnp.isnan(dm.state_space_divergence(x, x + 100.0))  # gen outside
  x8 = _gauss(0, 2000, 8)    # >= 6 dims: the GMM estimate
  assert abs(float(dm.state_space_divergence(x8, x8))) < 1e-6
  g_near = dm.state_space_divergence(x8, _gauss(1, 2000, 8, 0.3))
  g_far = dm.state_space_divergence(x8, _gauss(1, 2000, 8, 1.0))
  assert 0 < float(g_near) < float(g_far)


def test_gmm_divergence_of_far_gaussians_is_near_the_smoothed_closed_form():
  # Mixtures of N(x_t, I) over N(0, I) and N(m, I) samples approach
  # N(0, 2I) and N(m, 2I): KL = |m|^2 / (2 * 2).
  m = jnp.array([1.0, 0, 0, 0, 0, 0])
  x, y = _gauss(0, 4000, 6), _gauss(1, 4000, 6) + m
  kl = dm.state_space_divergence_gmm(x, y, jax.random.PRNGKey(2),
                                     mc_samples=2000)
  np.testing.assert_allclose(kl, 0.25, atol=0.08)


def test_power_spectrum_error_orders_frequency_mismatch():
  t = jnp.arange(4096) * 0.01
  sig = lambda w: jnp.stack([jnp.sin(w * t), jnp.cos(1.3 * w * t)], 1)
  x = sig(5.0)
  assert float(dm.power_spectrum_error(x, x)) < 1e-6
  assert float(dm.power_spectrum_error(x, 3.0 * x + 1.0)) < 1e-5  # z-scored
  near = dm.power_spectrum_error(x, sig(5.2))
  far = dm.power_spectrum_error(x, sig(9.0))
  assert 0 < float(near) < float(far) <= 1.0
  disjoint = dm.power_spectrum_error(x, sig(9.0), smoothing=2.0)
  np.testing.assert_allclose(disjoint, 1.0, atol=0.05)


def test_smoothing_matches_a_mirrored_gaussian_filter():
  ps = jax.random.uniform(jax.random.PRNGKey(0), (300, 2))
  radius, s = 8, 2.0
  k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / s) ** 2)
  k /= k.sum()
  pad = np.pad(np.asarray(ps), ((radius, radius), (0, 0)), mode="reflect")
  ref = np.stack([np.convolve(pad[:, i], k, "valid") for i in range(2)], 1)
  np.testing.assert_allclose(dm._gaussian_smooth(ps, s), ref, atol=1e-6)


def test_prediction_error_curve_of_a_known_linear_map():
  # Truth x_{t+1} = 0.9 x_t; model z -> 0.8 z: n-step error (0.9^n -
  # 0.8^n)^2 * mean(x_t^2).
  x = 0.9 ** jnp.arange(40.0)[:, None] * jnp.array([[1.0, -2.0]])
  curve = dm.prediction_error_curve(lambda z: 0.8 * z, x, 5)
  starts = x[:35]
  n = jnp.arange(1, 6.0)
  expect = (0.9 ** n - 0.8 ** n) ** 2 * jnp.mean(starts ** 2)
  np.testing.assert_allclose(curve, expect, rtol=1e-5)
  exact = dm.prediction_error_curve(lambda z: 0.9 * z, x, 5)
  np.testing.assert_allclose(exact, 0.0, atol=1e-10)


def test_max_lyapunov_of_linear_and_lorenz_maps():
  a = jnp.diag(jnp.array([2.0, 0.5]))
  lam = dm.max_lyapunov(lambda z: a @ z, jnp.ones(2), 1000)
  np.testing.assert_allclose(lam, np.log(2.0), atol=1e-3)
  from common.data import dynamical
  sys = dynamical.SYSTEMS["lorenz63"]
  step = lambda z: dynamical.rk4_step(sys.vector_field, z, sys.params, 0.01)
  lam = dm.max_lyapunov(step, jnp.array([1.0, 1.0, 20.0]), 10000, dt=0.01,
                        burn_in=500)
  assert 0.75 < float(lam) < 1.05     # literature value 0.906

"""Noise2Score: Tweedie formulas against closed-form posteriors, the AR-DAE
optimum against the true score, the U-Net's shapes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy import special

from algos.denoising import noise2score
from algos.denoising import tweedie
from algos.denoising import unet


def test_gaussian_tweedie_is_the_posterior_mean():
  # x ~ N(m, t^2), y = x + sigma n: p(y) = N(m, t^2 + sigma^2).
  m, t, sigma = 0.4, 0.2, 25.0 / 255.0
  y = jnp.linspace(-0.5, 1.5, 41)
  score = -(y - m) / (t ** 2 + sigma ** 2)
  posterior_mean = m + t ** 2 / (t ** 2 + sigma ** 2) * (y - m)
  np.testing.assert_allclose(
      tweedie.tweedie(y, score, "gaussian", 25.0), posterior_mean,
      rtol=1e-5, atol=1e-6)


def _quadrature(log_joint, grid, fn):
  """`E[fn(theta) | y]` by summing the joint `[n, g]` on a fine grid `[g]`
  -> `[n]`."""
  w = np.exp(log_joint - np.max(log_joint, axis=1, keepdims=True))
  return np.sum(w * fn(grid), axis=1) / np.sum(w, axis=1)


def test_gamma_tweedie_is_the_harmonic_posterior_mean():
  # Rate lam = 1/x ~ Gamma(a, rate b); y | x ~ Gamma(k, scale x / k).
  a, b, k = 3.0, 1.5, 100.0
  log_marginal = lambda y: (k - 1) * jnp.log(y) - (a + k) * jnp.log(b + k * y)
  ys = jnp.array([0.2, 0.5, 1.0, 1.7])
  score = jax.vmap(jax.grad(log_marginal))(ys)
  x_hat = tweedie.tweedie(ys, score, "gamma", k)
  np.testing.assert_allclose(1.0 / x_hat, (a + k) / (b + k * ys), rtol=1e-5)
  # Independently: E[1/x | y] by quadrature of prior x likelihood.
  lam = np.linspace(1e-3, 20.0, 200001)
  y = np.asarray(ys)[:, None]
  log_joint = ((a - 1) * np.log(lam) - b * lam           # prior
               + k * np.log(lam) - k * lam * y)          # likelihood
  np.testing.assert_allclose(
      1.0 / x_hat, _quadrature(log_joint, lam, lambda v: v), rtol=1e-4)


def test_poisson_log_posterior_mean_is_exact_and_the_paper_form_close():
  # lam ~ Gamma(a, rate b), z ~ Poisson(lam): z is negative binomial.
  a, b = 4.0, 0.05
  log_marginal = lambda z: (special.gammaln(z + a) - special.gammaln(z + 1)
                            - z * jnp.log(b + 1.0))
  zs = jnp.array([3.0, 10.0, 40.0, 95.0])
  score = jax.vmap(jax.grad(log_marginal))(zs)
  exact = special.digamma(a + zs) - jnp.log(b + 1.0)
  np.testing.assert_allclose(
      tweedie.log_posterior_mean_poisson(zs, score), exact, rtol=1e-5)
  lam = np.linspace(1e-3, 400.0, 400001)
  z = np.asarray(zs, np.float64)[:, None]
  log_joint = (a - 1) * np.log(lam) - b * lam + z * np.log(lam) - lam
  np.testing.assert_allclose(_quadrature(log_joint, lam, np.log), exact,
                             rtol=1e-4, atol=1e-4)
  # The paper's x_hat = (y + zeta/2) exp(s) uses digamma(z+1) ~ log(z+1/2);
  # with y = zeta z it is zeta exp(E[log lam | z]) up to that error.
  zeta = 0.01
  paper = tweedie.tweedie(zeta * zs, score, "poisson", zeta)
  np.testing.assert_allclose(paper, zeta * jnp.exp(exact), rtol=5e-3)
  np.testing.assert_allclose(tweedie.model_input(zeta * zs, "poisson", zeta),
                             zs, rtol=1e-6)


def test_ardae_optimum_is_the_score_of_the_smoothed_gaussian():
  # y ~ N(mu, s^2); for s(y) = w y + c the AR-DAE loss is quadratic in
  # (w, c), so one Newton step from 0 is its minimiser. The optimum is the
  # score of y + sigma_a u: -(y - mu) / (s^2 + sigma_a^2), which tends to
  # the true score as sigma_a -> 0. (Monte Carlo error ~ s / (sigma_a
  # sqrt(n)): sigma_a stays >= s / 4 here.)
  mu, s = 0.5, 0.2
  y = mu + s * jax.random.normal(jax.random.PRNGKey(0), (100000,))

  @jax.jit
  def newton(sigma_a):
    def loss(theta):
      return noise2score.ardae_loss(lambda v: theta[0] * v + theta[1], y,
                                    sigma_a, jax.random.PRNGKey(1))
    zero = jnp.zeros(2)
    return -jnp.linalg.solve(jax.hessian(loss)(zero), jax.grad(loss)(zero))

  errors = []
  for sigma_a in (0.2, 0.05):
    var = s ** 2 + sigma_a ** 2
    theta = newton(sigma_a)
    np.testing.assert_allclose(theta, [-1 / var, mu / var], rtol=0.02)
    errors.append(abs(theta[0] * s ** 2 + 1))   # vs the true score's slope
  assert errors[1] < errors[0] / 4


def test_annealed_sigma_follows_the_official_schedule():
  sig = lambda t: noise2score.annealed_sigma(jnp.asarray(t), 0.05, 0.001,
                                             100.0)
  np.testing.assert_allclose(sig(-1), 0.05)
  np.testing.assert_allclose(sig(49), 0.0255, rtol=1e-5)
  np.testing.assert_allclose([sig(99), sig(500)], [0.001, 0.001])


def test_blind_grid_and_criteria():
  np.testing.assert_allclose(tweedie.blind_grid("gamma", 3), [40, 80, 120])
  flat, rough = np.full((1, 8, 8, 1), 0.5), np.zeros((1, 8, 8, 1))
  rough[:, ::2] = 1.0
  for noise in tweedie.NOISES:
    assert (tweedie.blind_criterion(flat, flat, noise)
            < tweedie.blind_criterion(rough + 0.5, flat, noise))
  with pytest.raises(ValueError, match="allowed"):
    tweedie.tweedie(flat, flat, "laplace", 1.0)


def test_unet_shapes_and_depth_check():
  # Shapes only (traced, not compiled): the smoke run compiles the model.
  model = unet.N2NUNet(width=8, depth=2, head=(8, 8))
  x = jax.ShapeDtypeStruct((2, 16, 16, 1), jnp.float32)
  params = jax.eval_shape(model.init, jax.random.PRNGKey(0), x)
  assert jax.eval_shape(model.apply, params, x)["output"].shape == (
      2, 16, 16, 1)
  with pytest.raises(ValueError, match="divisible by 4"):
    jax.eval_shape(model.apply, params,
                   jax.ShapeDtypeStruct((1, 18, 18, 1), jnp.float32))

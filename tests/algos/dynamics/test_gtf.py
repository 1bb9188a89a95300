"""GTF: forcing identities, the official alpha rules, bounded gradients."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np
import optax

from algos.dynamics import gtf
from algos.dynamics import shplrnn
from common import config as config_lib

A_TENT = 0.4     # skew tent map: chaotic, Lyapunov exponent ~0.67
# jitted once per shape: alpha / tau traced, so the tests share compilations
GTF = jax.jit(shplrnn.gtf_unroll, static_argnums=(3,))
STF = jax.jit(shplrnn.stf_unroll, static_argnums=(3,))   # (tau traced)
GENERATE = jax.jit(shplrnn.generate, static_argnums=(2, 3))


def _tent(eps: float = 0.0, m: int = 3) -> shplrnn.Params:
  """The skew tent map in every coordinate, as an (unclipped) shPLRNN:
  z' = z / a - (1/a + 1/(1-a)) relu(z - a)."""
  return {"A": jnp.full((m,), 1 / A_TENT + eps),
          "W1": -(1 / A_TENT + 1 / (1 - A_TENT)) * jnp.eye(m),
          "W2": jnp.eye(m), "h1": jnp.zeros(m), "h2": jnp.full((m,), -A_TENT)}


@functools.lru_cache(maxsize=None)
def _random(m=3, h=16, seed=0) -> tuple[shplrnn.ShallowPLRNN, dict]:
  model = shplrnn.ShallowPLRNN(latent_dim=m, hidden_dim=h)
  x = jax.random.normal(jax.random.PRNGKey(seed), (4, 12, 3))
  return model, model.init(jax.random.PRNGKey(seed + 1), x)["params"]


def _loss(p, x, alpha, steps):
  """GTF loss on the first `steps` predictions of an unroll of x (the
  gradient equals that of the unroll of x[:, :steps + 1])."""
  pred = shplrnn.gtf_unroll(p, x, alpha, False)
  err = jnp.where(jnp.arange(x.shape[1] - 1)[None, :, None] < steps,
                  (pred - x[:, 1:]) ** 2, 0.0)
  return jnp.sum(err) / (steps * x.shape[0] * x.shape[2])


@jax.jit
def _grad_norm(p, x, alpha, steps):
  return optax.tree.norm(jax.grad(_loss)(p, x, alpha, steps))


def test_alpha_one_is_full_forcing_and_alpha_zero_free_running():
  _, p = _random()
  x = jax.random.normal(jax.random.PRNGKey(5), (4, 12, 3))
  forced = GTF(p, x, jnp.float32(1.0), True)
  np.testing.assert_allclose(forced, shplrnn.step(p, x[:, :-1], True),
                             atol=1e-6)
  np.testing.assert_allclose(STF(p, x, 1, True), forced,
                             atol=1e-6)           # sparse TF with tau = 1
  free = GENERATE(p, x[:, 0], 12, True)[:, 1:]
  np.testing.assert_allclose(GTF(p, x, jnp.float32(0.0), True), free,
                             atol=1e-6)
  np.testing.assert_allclose(STF(p, x, 100, True), free,
                             atol=1e-6)           # never forced


def test_partially_observed_latents_start_at_L_x_and_are_forced_to_zero():
  model, p = _random(m=5)
  assert p["L"].shape == (2, 3)
  x = jax.random.normal(jax.random.PRNGKey(5), (2, 6, 3))
  z = GTF(p, x, jnp.float32(1.0), True)
  z1 = jnp.concatenate([x[:, 0], x[:, 0] @ p["L"].T], -1)
  np.testing.assert_allclose(z[:, 0], shplrnn.step(p, z1, True), atol=1e-6)
  zhat = jnp.concatenate([x[:, 1], jnp.zeros((2, 2))], -1)
  np.testing.assert_allclose(z[:, 1], shplrnn.step(p, zhat, True), atol=1e-6)
  del model


def test_closed_form_jacobian_and_its_norm_bound():
  for clipped in (True, False):
    _, p = _random()
    z = jax.random.normal(jax.random.PRNGKey(9), (3,))
    auto = jax.jacfwd(lambda v: shplrnn.step(p, v, clipped))(z)
    np.testing.assert_allclose(shplrnn.jacobian(p, z, clipped), auto,
                               atol=1e-6)
    assert float(gtf.spectral_norms(auto)) <= float(
        shplrnn.norm_upper_bound(p)) + 1e-6


def test_alpha_rules_match_the_official_definitions():
  _, p = _random()
  zhat = jax.random.normal(jax.random.PRNGKey(2), (3, 7, 3))
  jac = np.asarray(shplrnn.jacobian(p, zhat, True))
  norms = np.linalg.norm(jac, 2, axis=(-2, -1))          # [3, 7]
  expect = {
      "batch_maximum": norms.max(),
      "product_upper_bound": np.exp(np.log(norms).mean(1)).max(),
      "arithmetic_mean": max(np.linalg.norm(jac[b].mean(0), 2)
                             for b in range(3)),
      "jacobian_upper_bound": float(shplrnn.norm_upper_bound(p))}
  for method, value in expect.items():
    np.testing.assert_allclose(gtf.estimate_norm(p, zhat, method, True),
                               value, rtol=1e-5, err_msg=method)
  np.testing.assert_allclose(gtf.optimal_alpha(jnp.float32(4.0)), 0.75)
  assert float(gtf.optimal_alpha(jnp.float32(0.5))) == 0.0
  # Annealing: a larger estimate is taken at once; a smaller one slowly.
  np.testing.assert_allclose(gtf.anneal(0.2, 0.6, 0.999), 0.6)
  np.testing.assert_allclose(gtf.anneal(0.6, 0.2, 0.9), 0.56, rtol=1e-6)


def test_gtf_bounds_the_gradients_that_explode_under_bptt():
  # Data from the chaotic tent map, a slightly wrong model of it.
  truth, model = _tent(), _tent(0.01)
  x0 = jax.random.uniform(jax.random.PRNGKey(0), (8, 3), minval=0.05,
                          maxval=0.95)
  xs = GENERATE(truth, x0, 81, False)
  norm = gtf.estimate_norm(model, xs[:, 1:], "product_upper_bound", False)
  alpha = gtf.optimal_alpha(norm)
  assert 0.4 < float(alpha) < 0.7
  grad_norm = lambda t, a: float(_grad_norm(model, xs, jnp.float32(a), t))
  bptt = [grad_norm(t, 0.0) for t in (10, 20, 40)]
  assert bptt[1] > 100 * bptt[0] and bptt[2] > 1e4 * bptt[1]   # e^(0.67 T)
  assert not np.isfinite(grad_norm(80, 0.0))       # overflows float32
  forced = [grad_norm(t, alpha) for t in (10, 20, 40, 80)]
  assert max(forced) < 2 * min(forced) and max(forced) < 1.0


def test_unknown_settings_are_refused():
  import pytest  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match="allowed"):
    gtf.make({"alpha_rule": "x"})
  method = gtf.make({})
  bad = mlc.ConfigDict({"alpha_method": "geomean"})
  assert not method.rules["alpha_method"].test(bad.alpha_method)
  assert isinstance(method.rules["alpha"], config_lib.Rule)

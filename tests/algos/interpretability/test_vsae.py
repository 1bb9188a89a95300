"""TopK SAE / vSAE: TopK keeps exactly k, the KL identity, beta = 0 with zero
variance is the TopK SAE, gradients, metrics and the toy generator."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np
import pytest

from algos.interpretability import sae_eval
from algos.interpretability import vsae
from algos.interpretability import vsae_method
from common import config as config_lib
from common.data import superposition

D, M, K, B = 6, 12, 3, 5


@functools.cache
def _params(variance="learned", seed=0):
  model = vsae.TopKSAE(dict_size=M, k=K, variance=variance)
  x = jax.random.normal(jax.random.PRNGKey(seed), (B, D))
  return model.init(jax.random.PRNGKey(seed + 1), x)["params"], x


def test_topk_keeps_exactly_k_largest_even_with_ties():
  scores = jnp.array([[0.0] * M,                       # all tied
                      list(range(M)),
                      [1.0, -5.0, 3.0] + [0.0] * (M - 3)])
  mask = np.asarray(vsae.topk_mask(scores, K))
  assert (mask.sum(-1) == K).all()
  assert mask[1, -K:].all()                             # the k largest
  assert mask[2, [0, 2]].all() and not mask[2, 1]


def test_gaussian_kl_identity():
  mu = jnp.array([0.0, 0.7, -1.2, 2.0])
  log_var = jnp.array([0.0, -1.0, 0.5, -3.0])

  @jax.jit
  def kl_and_monte_carlo(mu, log_var):
    # KL = E_q[log q(z) - log p(z)], with antithetic samples.
    eps = jax.random.normal(jax.random.PRNGKey(0), (200_000, 1))
    eps = jnp.concatenate([eps, -eps])
    sigma = jnp.exp(0.5 * log_var)
    z = mu + sigma * eps
    log_q = -0.5 * eps ** 2 - jnp.log(sigma)
    return vsae.gaussian_kl(mu, log_var), jnp.mean(log_q + 0.5 * z ** 2, 0)

  kl, monte_carlo = kl_and_monte_carlo(mu, log_var)
  assert kl[0] == 0.0
  np.testing.assert_allclose(kl, monte_carlo, atol=5e-3)
  # "selected": the same sum over the TopK latents only.
  outputs = {"mu": jnp.tile(mu, (2, 3)), "log_var": jnp.tile(log_var, (2, 3)),
             "selected": jnp.tile(mu > 0.5, (2, 3))}
  np.testing.assert_allclose(vsae_method.kl_term(outputs, "selected"),
                             3 * (kl[1] + kl[3]), rtol=1e-6)
  np.testing.assert_allclose(vsae_method.kl_term(outputs, "all"),
                             3 * kl.sum(), rtol=1e-6)


HP = {"auxk_alpha": 1 / 32, "dead_window": 4.0, "beta": 0.0,
      "kl_warmup_steps": 0.0}


def _objective(params, x, noise, variance, hp, since):
  out = vsae.encode(params, x, K, noise, variance)
  out["recon"] = vsae.decode(params, out["features"])
  loss, _, _ = vsae_method.sae_objective(
      hp, out, x, vsae.decoder_rows(params), since, jnp.float32(10.0),
      aux_k=4, variational=variance != "none")
  return loss


def test_beta_zero_with_zero_variance_is_the_topk_sae():
  params, x = _params("learned")
  shared = {k: v for k, v in params.items() if k not in ("w_var", "b_var")}
  since = jnp.array([0, 9] * (M // 2), jnp.int32)       # half dead: AuxK on

  @jax.jit
  def both(params, shared):
    zero = jnp.zeros((B, M))
    v = jax.value_and_grad(_objective)(params, x, zero, "learned", HP, since)
    t = jax.value_and_grad(_objective)(shared, x, None, "none", HP, since)
    enc_v, enc_t = (vsae.encode(params, x, K, zero, "learned"),
                    vsae.encode(shared, x, K))
    return v, t, enc_v["features"], enc_t["features"]

  (lv, gv), (lt, gt), fv, ft = both(params, shared)
  np.testing.assert_array_equal(fv, ft)
  np.testing.assert_allclose(lv, lt, rtol=1e-6)
  for key in shared:
    np.testing.assert_allclose(gv[key], gt[key], rtol=1e-5, atol=1e-7)
  np.testing.assert_array_equal(gv["w_var"], 0.0)       # beta = 0


def test_gradients_match_finite_differences():
  with jax.enable_x64(True):
    params, x = _params("learned", seed=3)
    params = jax.tree.map(lambda a: a.astype(jnp.float64), params)
    x = x.astype(jnp.float64)
    noise = 0.3 * jax.random.normal(jax.random.PRNGKey(7), (B, M),
                                    jnp.float64)
    since = jnp.array([0, 9] * (M // 2), jnp.int32)
    # AuxK reconstructs a detached residual (as Gao et al.), which finite
    # differences would see: checked with it off.
    hp = dict(HP, beta=0.5, kl_warmup_steps=20.0, auxk_alpha=0.0)
    f = lambda p: _objective(p, x, noise, "learned", hp, since)  # noqa: E731
    direction = jax.tree.map(
        lambda a: jax.random.normal(jax.random.PRNGKey(a.size), a.shape,
                                    jnp.float64), params)

    @jax.jit
    def analytic_and_numeric(p):
      g = jax.grad(f)(p)
      along = sum(jnp.sum(a * b) for a, b in zip(jax.tree.leaves(g),
                                                 jax.tree.leaves(direction)))
      step = lambda s: jax.tree.map(lambda a, b: a + s * b, p, direction)  # noqa: E731
      eps = 1e-6
      return along, (f(step(eps)) - f(step(-eps))) / (2 * eps)

    along, numeric = analytic_and_numeric(params)
    np.testing.assert_allclose(along, numeric, rtol=1e-6)


def test_decoder_rows_are_unit_norm_and_scale_free():
  params, x = _params("none")
  rows = vsae.decoder_rows(params)
  np.testing.assert_allclose(jnp.linalg.norm(rows, axis=-1), 1.0, rtol=1e-6)
  scaled = dict(params, w_dec=params["w_dec"] * jnp.arange(1.0, M + 1)[:, None])
  f = vsae.encode(params, x, K)["features"]
  np.testing.assert_allclose(vsae.decode(scaled, f), vsae.decode(params, f),
                             rtol=1e-5)


def test_metrics_on_known_cases():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(50, D))
  feats = np.zeros((50, M))
  feats[:, :3] = rng.normal(size=(50, 3))
  m = sae_eval.reconstruction_metrics(x, x, feats)
  assert m["nmse"] == 0.0 and m["fve"] == 1.0 and m["l0"] == 3.0
  assert m["dead_frac"] == pytest.approx(1 - 3 / M)
  assert sae_eval.reconstruction_metrics(x, np.broadcast_to(
      x.mean(0), x.shape), feats)["nmse"] == pytest.approx(1.0)
  truth = rng.normal(size=(4, D))
  rec = sae_eval.recovery_metrics(np.concatenate([truth * 3, -truth]), truth)
  assert rec == {"mmcs": pytest.approx(1.0), "recovered": 1.0}


def test_toy_superposition_generator():
  config = mlc.ConfigDict(dict(data=dict(name="toy_superposition", kwargs=dict(
      num_features=40, dim=8, p_active=0.05))))
  gen = superposition.toy_superposition(config)
  batch = jax.jit(gen.sample, static_argnums=1)(jax.random.PRNGKey(3), 400)
  dictionary = superposition.true_dictionary(config)
  np.testing.assert_allclose(batch["x"], batch["codes"] @ dictionary,
                             rtol=1e-5, atol=1e-6)
  assert abs(float(jnp.mean(batch["codes"] > 0)) - 0.05) < 0.01
  np.testing.assert_allclose(jnp.linalg.norm(dictionary, axis=-1), 1.0,
                             rtol=1e-6)
  config.data.kwargs.p_active = 1.5
  with pytest.raises(config_lib.ConfigError, match="p_active"):
    superposition.toy_superposition(config)

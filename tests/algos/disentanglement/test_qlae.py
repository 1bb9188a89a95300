"""Latent quantization and the autoencoder baselines' losses."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np

from algos.disentanglement import beta_tcvae
from algos.disentanglement import beta_vae
from algos.disentanglement import qlae
from common.core import method as method_lib
from common import models


def test_quantize_maps_every_latent_to_its_own_nearest_codebook_value():
  codebook = jnp.stack([jnp.linspace(-0.5, 0.5, 5),
                        jnp.array([-2.0, -1.0, 0.0, 1.0, 2.0])])   # [2, 5]
  z = jax.random.normal(jax.random.PRNGKey(0), (64, 2)) * 2.0
  q, idx = qlae.quantize(z, codebook)
  assert q.shape == z.shape and idx.dtype == jnp.int32
  for j in range(2):
    assert set(np.asarray(q[:, j]).tolist()) <= set(
        np.asarray(codebook[j]).tolist())
    nearest = jnp.argmin(jnp.abs(z[:, j, None] - codebook[j][None]), axis=1)
    np.testing.assert_array_equal(idx[:, j], nearest)
    np.testing.assert_array_equal(q[:, j], codebook[j][idx[:, j]])


def test_quantize_rejects_mismatched_shapes():
  try:
    qlae.quantize(jnp.zeros((4, 3)), jnp.zeros((2, 5)))
  except ValueError as e:
    assert "[n, v]" in str(e)
  else:
    raise AssertionError("expected ValueError")


def test_straight_through_forward_is_q_and_gradient_is_identity():
  codebook = qlae.init_codebook(3, 10)
  np.testing.assert_allclose(codebook[1], np.linspace(-0.5, 0.5, 10),
                             rtol=1e-6)
  z = jnp.array([[0.12, -0.31, 0.77]])
  w = jnp.array([[1.0, -2.0, 3.0]])

  def f(z):
    q, _ = qlae.quantize(z, codebook)
    return jnp.sum(w * qlae.straight_through(z, q))

  q, _ = qlae.quantize(z, codebook)
  np.testing.assert_allclose(qlae.straight_through(z, q), q, atol=1e-7)
  np.testing.assert_allclose(jax.grad(f)(z), w)   # d(z_hat)/dz = I


def test_quantization_loss_trains_codebook_commitment_trains_encoder():
  codebook = qlae.init_codebook(2, 4)
  z = jnp.array([[0.3, -0.2], [0.05, 0.45]])

  def losses(z, book):
    q, _ = qlae.quantize(z, book)
    return qlae.quantization_loss(z, q), qlae.commitment_loss(z, q)

  g_q_z, g_q_book = jax.grad(lambda z, b: losses(z, b)[0], (0, 1))(
      z, codebook)
  g_c_z, g_c_book = jax.grad(lambda z, b: losses(z, b)[1], (0, 1))(
      z, codebook)
  assert jnp.all(g_q_z == 0) and jnp.any(g_q_book != 0)
  assert jnp.all(g_c_book == 0) and jnp.any(g_c_z != 0)
  q, _ = qlae.quantize(z, codebook)
  np.testing.assert_allclose(losses(z, codebook)[0],
                             jnp.mean((z - q) ** 2), rtol=1e-6)


def _outputs(latent, rng=0, b=8):
  model = models.get_model("autoencoder", 0, image_shape=(8, 8, 1),
                           latent=latent, num_latents=4, num_values=5,
                           hidden_sizes=(16,))
  x = jax.random.uniform(jax.random.PRNGKey(rng), (b, 8, 8, 1))
  variables = model.init({"params": jax.random.PRNGKey(1),
                          "dropout": jax.random.PRNGKey(2)}, x, train=False)
  out = model.apply(variables, x, train=True,
                    rngs={"dropout": jax.random.PRNGKey(3)})
  images = (x > 0.5).astype(jnp.uint8) * 255
  return model, variables, out, {"image": images}


def test_qlae_loss_is_bce_plus_weighted_latent_terms_and_never_retraces():
  model, variables, out, batch = _outputs("quantized")
  method = method_lib.get_method("qlae")
  bce = qlae.reconstruction_bce(out["logits"], batch["image"], 255.0)

  @jax.jit
  @chex.assert_max_traces(n=1)
  def loss(hp):
    return method.loss(hp, {}, out, batch, variables["params"], None)[0]

  for lq, lc in ((0.0, 0.0), (0.01, 0.01), (0.5, 2.0)):
    hp = {"quantization": jnp.float32(lq), "commitment": jnp.float32(lc),
          "target_scale": jnp.float32(255.0)}
    z, q = out["z_continuous"], out["z_quantized"]
    expected = bce + (lq + lc) * jnp.mean((z - q) ** 2)
    np.testing.assert_allclose(loss(hp), expected, rtol=1e-5)
  # Strength 0 is the plain autoencoder's loss.
  ae = method_lib.get_method("ae")
  hp0 = {"quantization": 0.0, "commitment": 0.0, "target_scale": 255.0}
  both = jax.jit(lambda out: (
      method.loss(hp0, {}, out, batch, None, None)[0],
      ae.loss({"target_scale": 255.0}, {}, out, batch, None, None)[0]))
  np.testing.assert_allclose(*both(out), rtol=1e-6)


def test_qlae_needs_a_quantized_model():
  model, _, out, batch = _outputs("continuous")
  method = method_lib.get_method("qlae")
  try:
    method.loss({"quantization": 0.01, "commitment": 0.01,
                 "target_scale": 255.0}, {}, out, batch, None, None)
  except ValueError as e:
    assert "latent='quantized'" in str(e)
  else:
    raise AssertionError("expected ValueError")


def test_gaussian_kl_matches_closed_form_and_is_zero_at_prior():
  mu = jnp.array([[0.0, 1.0]])
  sigma = jnp.array([[1.0, 0.5]])
  expected = 0.5 * (1.0 + 0.25 - 1.0) - np.log(0.5) + 0.0
  np.testing.assert_allclose(beta_vae.gaussian_kl(mu, sigma), [expected],
                             rtol=1e-6)
  np.testing.assert_allclose(
      beta_vae.gaussian_kl(jnp.zeros((3, 4)), jnp.ones((3, 4))), 0.0,
      atol=1e-7)


def test_tc_decomposition_sums_to_log_q_over_p_and_beta_vae_scaling():
  z = jax.random.normal(jax.random.PRNGKey(0), (16, 3))
  mu = 0.3 * jax.random.normal(jax.random.PRNGKey(1), (16, 3))
  sigma = jnp.full((16, 3), 0.7)
  decompose = jax.jit(beta_tcvae.tc_decomposition)
  mi, tc, dwkl = decompose(z, mu, sigma, 1000.0)
  norm = jax.scipy.stats.norm
  log_q = norm.logpdf(z, mu, sigma).sum(1)
  log_p = norm.logpdf(z).sum(1)
  np.testing.assert_allclose(mi + tc + dwkl, log_q - log_p, rtol=1e-4,
                             atol=1e-4)
  # With one latent the total correlation is exactly 0.
  _, tc1, _ = decompose(z[:, :1], mu[:, :1], sigma[:, :1], 1000.0)
  np.testing.assert_allclose(tc1, 0.0, atol=1e-5)
  model, _, out, batch = _outputs("gaussian")
  vae = method_lib.get_method("beta_vae")
  total, metrics, _ = jax.jit(lambda out: vae.loss(
      {"beta": 3.0, "target_scale": 255.0}, {}, out, batch, None, None))(out)
  np.testing.assert_allclose(total, metrics["bce"] + 3.0 * metrics["kl"] / 64,
                             rtol=1e-6)


def test_conv_autoencoder_under_jit_and_decode():
  model = models.get_model("autoencoder", 0, image_shape=(16, 16, 3),
                           latent="quantized", num_latents=4, num_values=3,
                           encoder="conv", conv_widths=(4, 8),
                           hidden_sizes=(16,))
  x = jnp.ones((2, 16, 16, 3))
  variables = jax.jit(lambda r: model.init(r, x, train=False))(
      jax.random.PRNGKey(0))
  out = jax.jit(lambda v: model.apply(v, x, train=False))(variables)
  assert out["logits"].shape == (2, 16, 16, 3)
  assert out["features"].shape == out["z_indices"].shape == (2, 4)
  decoded = model.apply(variables, out["z_quantized"], method="decode")
  np.testing.assert_allclose(decoded, out["logits"], rtol=1e-5, atol=1e-6)
  try:
    models.get_model("autoencoder", 0, latent="binary").init(
        jax.random.PRNGKey(0), jnp.ones((1, 64, 64, 1)), train=False)
  except ValueError as e:
    assert "allowed" in str(e)
  else:
    raise AssertionError("expected ValueError")

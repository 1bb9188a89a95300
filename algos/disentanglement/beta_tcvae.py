"""beta-TCVAE baseline (minibatch-weighted-sampling estimator).

beta-TCVAE: Chen, Li, Grosse, Duvenaud, "Isolating Sources of
Disentanglement in VAEs", NeurIPS 2018, arXiv:1802.04942. As implemented for
the baselines of Disentanglement via Latent Quantization (arXiv:2305.18378),
official kylehkhsu/latent_quantization `disentangle/models/tcvae.py`: the KL
is split into index-code MI, total correlation and dimension-wise KL with the
minibatch-weighted-sampling estimates of `log q(z)` and `log prod_k q(z_k)`
(dataset size N), each weighted, and divided by the number of pixels because
the BCE is a per-pixel mean.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from algos.disentanglement import qlae
from common import config as config_lib
from common.core import method as method_lib

_LOG_2PI = jnp.log(2.0 * jnp.pi)


def _log_normal(z: jax.Array, mu: jax.Array, sigma: jax.Array) -> jax.Array:
  return -0.5 * (jnp.square((z - mu) / sigma) + _LOG_2PI) - jnp.log(sigma)


def tc_decomposition(z: jax.Array, mu: jax.Array, sigma: jax.Array,
                     dataset_size: jax.Array
                     ) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Per-example MI, TC and dimension-wise KL estimates (MWS).

  Args:
    z: `[b, n]` samples from q(z|x_i).
    mu, sigma: `[b, n]` posterior parameters of the batch.
    dataset_size: N, the number of training examples.

  Returns:
    `(mi, tc, dwkl)`, each `[b]`; their sum is `log q(z|x) - log p(z)`.
  """
  b = z.shape[0]
  log_qz_given_x = jnp.sum(_log_normal(z, mu, sigma), axis=-1)
  log_pz = jnp.sum(_log_normal(z, 0.0, 1.0), axis=-1)
  # [b (sample i), b (posterior j), n]
  pair = _log_normal(z[:, None, :], mu[None, :, :], sigma[None, :, :])
  log_norm = jnp.log(b) + jnp.log(dataset_size)
  log_qz = jax.nn.logsumexp(jnp.sum(pair, axis=2), axis=1) - log_norm
  log_prod_qzk = jnp.sum(jax.nn.logsumexp(pair, axis=1) - log_norm, axis=1)
  return (log_qz_given_x - log_qz, log_qz - log_prod_qzk,
          log_prod_qzk - log_pz)


@method_lib.register_method("beta_tcvae")
def make(config: dict) -> method_lib.Method:
  """BCE_mean + (alpha MI + beta TC + gamma DWKL) / x_dim."""
  del config

  def hparams(config, run):
    hp = method_lib.default_hparams(config, run)
    hp["dataset_size"] = float(run.num_examples)
    return hp

  def loss(hparams, method_state, outputs, batch, params, rng):
    del params, rng
    qlae._require(outputs, ("z_mu", "z_sigma", "z_sample"), "beta_tcvae",  # pylint: disable=protected-access
                  "gaussian")
    logits = outputs["logits"]
    x_dim = logits[0].size
    bce = qlae.reconstruction_bce(logits, batch["image"],
                                  hparams["target_scale"])
    mi, tc, dwkl = tc_decomposition(outputs["z_sample"], outputs["z_mu"],
                                    outputs["z_sigma"],
                                    hparams["dataset_size"])
    mi, tc, dwkl = jnp.mean(mi), jnp.mean(tc), jnp.mean(dwkl)
    regulariser = (hparams["alpha"] * mi + hparams["beta"] * tc
                   + hparams["gamma"] * dwkl)
    total = bce + regulariser / x_dim
    return total, {"bce": bce, "mi": mi, "tc": tc, "dwkl": dwkl}, method_state

  return method_lib.Method(
      name="beta_tcvae", init=method_lib.stateless_init, loss=loss,
      hparams=hparams,
      rules={"alpha": config_lib.at_least(0.0),
             "beta": config_lib.at_least(0.0),
             "gamma": config_lib.at_least(0.0),
             "target_scale": config_lib.greater_than(0.0)})

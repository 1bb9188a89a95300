"""beta-VAE baseline with the official QLAE code's loss scaling.

beta-VAE: Higgins et al., ICLR 2017. As implemented for the baselines of
Disentanglement via Latent Quantization (arXiv:2305.18378), official
kylehkhsu/latent_quantization `disentangle/models/vae.py`: the BCE is a mean
over pixels, so the KL (a mean over latents there) is rescaled by
`n_z / x_dim`, i.e. the per-image ELBO divided by the number of pixels.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from algos.disentanglement import qlae
from common import config as config_lib
from common.core import method as method_lib


def gaussian_kl(mu: jax.Array, sigma: jax.Array) -> jax.Array:
  """`KL(N(mu, sigma^2) || N(0, 1))` per example, summed over latents.

  Args:
    mu, sigma: `[b, n]`.

  Returns:
    `[b]`.
  """
  return jnp.sum(-jnp.log(sigma) + 0.5 * (mu ** 2 + sigma ** 2 - 1.0),
                 axis=-1)


@method_lib.register_method("beta_vae")
def make(config: dict) -> method_lib.Method:
  """BCE_mean + beta * KL / x_dim; hparams `beta`, `target_scale`."""
  del config

  def loss(hparams, method_state, outputs, batch, params, rng):
    del params, rng
    qlae._require(outputs, ("z_mu", "z_sigma"), "beta_vae", "gaussian")  # pylint: disable=protected-access
    logits = outputs["logits"]
    x_dim = logits[0].size
    bce = qlae.reconstruction_bce(logits, batch["image"],
                                  hparams["target_scale"])
    kl = jnp.mean(gaussian_kl(outputs["z_mu"], outputs["z_sigma"]))
    total = bce + hparams["beta"] * kl / x_dim
    return total, {"bce": bce, "kl": kl}, method_state

  return method_lib.Method(
      name="beta_vae", init=method_lib.stateless_init, loss=loss,
      hparams=method_lib.default_hparams,
      rules={"beta": config_lib.at_least(0.0),
             "target_scale": config_lib.greater_than(0.0)})

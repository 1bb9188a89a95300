"""Latent quantization (QLAE): per-dimension scalar codebooks.

Paper: Disentanglement via Latent Quantization, Hsu, Dorrell, Whittington,
Wu, Finn, NeurIPS 2023, arXiv:2305.18378.
Official code: github.com/kylehkhsu/latent_quantization (JAX + Equinox);
`disentangle/latents/quantized.py`, `disentangle/models/quantized_ae.py`.

Each latent dimension j has its own learnable scalar codebook `V_j` of
`n_v` values (initialised `linspace(-0.5, 0.5, n_v)`). The encoder output
`z` is snapped per dimension to the nearest value, `q_j = V_j[argmin_k
|z_j - V_jk|]`, and the decoder sees `z_hat = z + sg(q - z)` (straight-
through: the forward value is `q`, the gradient reaches the encoder as if
the quantizer were the identity). The training loss is

  L = BCE_mean(dec(z_hat), x) + lambda_q * mean (sg(z) - q)^2
                              + lambda_c * mean (z - sg(q))^2,

the quantization term moving the codebook towards the encodings and the
commitment term pulling the encodings towards the codebook. The other half of
the method, strong weight decay on the network's weights only, is the
optimizer `adamw_split` in `common/core/optim.py`.

The quantizer lives in the model (`algos/disentanglement/autoencoder.py`, latent
"quantized") because the codebook is a parameter the optimizer updates; the
functions below are what that model calls.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from common import config as config_lib
from common.core import method as method_lib

PyTree = Any


def init_codebook(num_latents: int, num_values: int) -> jax.Array:
  """`[num_latents, num_values]`, every row `linspace(-0.5, 0.5, n_v)`."""
  row = jnp.linspace(-0.5, 0.5, num_values)
  return jnp.tile(row[None, :], (num_latents, 1))


def quantize(z: jax.Array, codebook: jax.Array
             ) -> tuple[jax.Array, jax.Array]:
  """Snaps each latent to the nearest value of its own codebook.

  Args:
    z: `[b, n]` continuous encodings.
    codebook: `[n, v]` scalar values per latent dimension.

  Returns:
    `(q [b, n], indices [b, n] int32)` with `q[i, j] = codebook[j,
    indices[i, j]]`; `q` is differentiable w.r.t. `codebook` (not `z`).
  """
  if z.ndim != 2 or codebook.ndim != 2 or z.shape[1] != codebook.shape[0]:
    raise ValueError(f"quantize expects z [b, n] and codebook [n, v]; got "
                     f"{z.shape} and {codebook.shape}")
  distances = jnp.abs(z[:, :, None] - codebook[None, :, :])   # [b, n, v]
  indices = jnp.argmin(distances, axis=-1).astype(jnp.int32)
  q = codebook[jnp.arange(codebook.shape[0])[None, :], indices]
  return q, indices


def straight_through(z: jax.Array, q: jax.Array) -> jax.Array:
  """`z + sg(q - z)`: the value of `q`, the gradient of the identity in z."""
  return z + jax.lax.stop_gradient(q - z)


def quantization_loss(z: jax.Array, q: jax.Array) -> jax.Array:
  """`mean (sg(z) - q)^2`: trains the codebook only."""
  return jnp.mean(jnp.square(jax.lax.stop_gradient(z) - q))


def commitment_loss(z: jax.Array, q: jax.Array) -> jax.Array:
  """`mean (z - sg(q))^2`: trains the encoder only."""
  return jnp.mean(jnp.square(z - jax.lax.stop_gradient(q)))


def reconstruction_bce(logits: jax.Array, images: jax.Array,
                       target_scale: jax.Array) -> jax.Array:
  """Mean (over pixels, channels and batch) sigmoid BCE.

  The official loss is the per-pixel *mean*: with a sum, the 0.01 latent
  weights would be ~4096x weaker relative to reconstruction.

  Args:
    logits: `[b, h, w, c]` decoder logits.
    images: `[b, h, w, c]` raw images (uint8 from the loader).
    target_scale: traced scalar mapping raw pixels to [0, 1] targets
      (255 for 0..255 images, 1 for TFDS `dsprites`' 0/1 images).
  """
  targets = images.astype(jnp.float32) / target_scale
  return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, targets))


def _require(outputs: dict[str, jax.Array], keys: tuple[str, ...],
             method: str, latent: str) -> None:
  missing = [k for k in keys if k not in outputs]
  if missing:
    raise ValueError(
        f"method {method!r} needs model outputs {list(keys)} (missing "
        f"{missing}); use model 'autoencoder' with "
        f"model.kwargs.latent={latent!r}")


@method_lib.register_method("qlae")
def make(config: dict) -> method_lib.Method:
  """The QLAE objective; hparams `quantization`, `commitment`,
  `target_scale` (all traced)."""
  del config

  def loss(hparams, method_state, outputs, batch, params, rng):
    del params, rng
    _require(outputs, ("z_continuous", "z_quantized"), "qlae", "quantized")
    z, q = outputs["z_continuous"], outputs["z_quantized"]
    bce = reconstruction_bce(outputs["logits"], batch["image"],
                             hparams["target_scale"])
    ql, cl = quantization_loss(z, q), commitment_loss(z, q)
    total = bce + hparams["quantization"] * ql + hparams["commitment"] * cl
    metrics = {"bce": bce, "quantization_loss": ql, "commitment_loss": cl}
    return total, metrics, method_state

  return method_lib.Method(
      name="qlae", init=method_lib.stateless_init, loss=loss,
      hparams=method_lib.default_hparams,
      rules={"quantization": config_lib.at_least(0.0),
             "commitment": config_lib.at_least(0.0),
             "target_scale": config_lib.greater_than(0.0)})

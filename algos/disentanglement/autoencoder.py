"""Autoencoders with quantized, continuous or Gaussian latents.

The encoder/decoder pair of the disentanglement papers (QLAE and its
AE / beta-VAE / beta-TCVAE baselines). Unlike the classifiers of the zoo,
"logits" are the decoder's per-pixel logits `[b, h, w, c]` and "features"
is the code the disentanglement metrics read:

* `latent="quantized"` (QLAE): the encoder output `z` is snapped to a
  per-dimension learnable scalar codebook (param `codebook` `[n, v]`,
  `algos.disentanglement.qlae.quantize`) and decoded through the
  straight-through estimator; "features" are the quantized values, and
  "z_continuous", "z_quantized", "z_indices" are returned for the loss.
* `latent="continuous"` (AE): "features" = `z`.
* `latent="gaussian"` (VAE family): the encoder gives `mu` and a softplus
  `sigma` (official `DiagonalGaussianLatent`); in training the decoder sees
  a sample drawn with the "dropout" rng, in evaluation `mu`; "features" =
  `mu`, plus "z_mu", "z_sigma", "z_sample".

Encoders: "mlp" (flatten, Dense+ReLU layers) or "conv" (stride-2 3x3 convs
with leaky ReLU, then Dense layers); decoders mirror them. The official
models (12-layer conv encoder with instance norm, "style" decoder) are
larger; these are the CPU-sized versions (see experiments/qlae/README.md).
`decode(z)` is exposed for latent traversals.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from algos.disentanglement import qlae
from common.models import registry

Dtype = Any
LATENTS = ("quantized", "continuous", "gaussian")
ENCODERS = ("mlp", "conv")


class Autoencoder(nn.Module):
  """Encoder -> latent layer -> decoder (see the module docstring).

  Attributes:
    num_classes: unused (the zoo's constructor contract).
    image_shape: `(h, w, c)` of the images (the decoder's output).
    latent: one of `LATENTS`.
    num_latents: `n`, latent dimensions.
    num_values: `v`, codebook values per latent (quantized only).
    encoder: one of `ENCODERS`.
    hidden_sizes: Dense widths after the input (encoder) / before the
      output (decoder, reversed).
    conv_widths: channels of the stride-2 convolutions ("conv" only).
    quantizer: `(z [b, n], codebook [n, v]) -> (q [b, n], indices [b, n])`;
      default `qlae.quantize` (forks plug in their own).
    codebook_init: `(num_latents, num_values) -> [n, v]` initial codebook.
  """

  num_classes: int = 0
  image_shape: Sequence[int] = (64, 64, 1)
  latent: str = "quantized"
  num_latents: int = 10
  num_values: int = 10
  encoder: str = "mlp"
  hidden_sizes: Sequence[int] = (256, 256)
  conv_widths: Sequence[int] = (32, 32, 64, 64)
  quantizer: Callable[..., Any] | None = None
  codebook_init: Callable[[int, int], jax.Array] | None = None
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def setup(self):
    if self.latent not in LATENTS:
      raise ValueError(f"unknown latent {self.latent!r}; allowed: {LATENTS}")
    if self.encoder not in ENCODERS:
      raise ValueError(f"unknown encoder {self.encoder!r}; allowed: "
                       f"{ENCODERS}")
    dense = lambda n, name: nn.Dense(n, dtype=self.dtype,  # noqa: E731
                                     param_dtype=self.param_dtype, name=name)
    h, w, c = self.image_shape
    n_out = self.num_latents * (2 if self.latent == "gaussian" else 1)
    self.enc_dense = [dense(n, f"enc_dense{i}")
                      for i, n in enumerate(self.hidden_sizes)]
    self.enc_out = dense(n_out, "enc_out")
    self.dec_dense = [dense(n, f"dec_dense{i}")
                      for i, n in enumerate(reversed(self.hidden_sizes))]
    if self.encoder == "conv":
      k = len(self.conv_widths)
      if h % 2 ** k or w % 2 ** k:
        raise ValueError(f"image_shape {tuple(self.image_shape)} must be "
                         f"divisible by 2^{k} for {k} conv layers")
      self.enc_convs = [nn.Conv(n, (3, 3), strides=2, dtype=self.dtype,
                                param_dtype=self.param_dtype,
                                name=f"enc_conv{i}")
                        for i, n in enumerate(self.conv_widths)]
      self._grid = (h // 2 ** k, w // 2 ** k, self.conv_widths[-1])
      self.dec_grid = dense(math.prod(self._grid), "dec_grid")
      widths = list(reversed(self.conv_widths))[1:] + [c]
      self.dec_convs = [nn.ConvTranspose(n, (4, 4), strides=(2, 2),
                                         dtype=self.dtype,
                                         param_dtype=self.param_dtype,
                                         name=f"dec_conv{i}")
                        for i, n in enumerate(widths)]
    else:
      self.dec_pixels = dense(h * w * c, "dec_pixels")
    if self.latent == "quantized":
      init = self.codebook_init or qlae.init_codebook
      self.codebook = self.param(
          "codebook", lambda _: init(self.num_latents,
                                     self.num_values).astype(self.param_dtype))

  def encode(self, x: jax.Array, train: bool) -> dict[str, jax.Array]:
    """Latents of `[b, h, w, c]` images; see the module docstring."""
    h = x.astype(self.dtype)
    if self.encoder == "conv":
      for conv in self.enc_convs:
        h = nn.leaky_relu(conv(h))
    h = jnp.reshape(h, (h.shape[0], -1))
    for layer in self.enc_dense:
      h = nn.relu(layer(h))
    pre = self.enc_out(h).astype(jnp.float32)
    if self.latent == "continuous":
      return {"features": pre, "z_hat": pre}
    if self.latent == "gaussian":
      mu, sigma_param = jnp.split(pre, 2, axis=-1)
      sigma = jax.nn.softplus(sigma_param)
      if train:
        noise = jax.random.normal(self.make_rng("dropout"), mu.shape)
        sample = mu + sigma * noise
      else:
        sample = mu
      return {"features": mu, "z_hat": sample, "z_mu": mu, "z_sigma": sigma,
              "z_sample": sample}
    quantize = self.quantizer or qlae.quantize
    q, indices = quantize(pre, self.codebook.astype(jnp.float32))
    return {"features": q, "z_hat": qlae.straight_through(pre, q),
            "z_continuous": pre, "z_quantized": q, "z_indices": indices}

  def decode(self, z: jax.Array) -> jax.Array:
    """`[b, n]` latents -> `[b, h, w, c]` float32 pixel logits."""
    h = z.astype(self.dtype)
    for layer in self.dec_dense:
      h = nn.relu(layer(h))
    if self.encoder == "conv":
      h = nn.relu(self.dec_grid(h)).reshape((h.shape[0], *self._grid))
      for i, conv in enumerate(self.dec_convs):
        h = conv(h)
        if i < len(self.dec_convs) - 1:
          h = nn.leaky_relu(h)
      return h.astype(jnp.float32)
    out = self.dec_pixels(h)
    return out.reshape((z.shape[0], *self.image_shape)).astype(jnp.float32)

  def __call__(self, x: jax.Array, train: bool) -> dict[str, jax.Array]:
    """`{"logits": [b, h, w, c], "features": [b, n], ...latents}`."""
    out = self.encode(x, train)
    out["logits"] = self.decode(out.pop("z_hat"))
    return out


@registry.register_model("autoencoder")
def autoencoder(num_classes: int = 0, **kwargs: Any) -> Autoencoder:
  kwargs["image_shape"] = tuple(kwargs.get("image_shape", (64, 64, 1)))
  for key in ("hidden_sizes", "conv_widths"):
    if key in kwargs:
      kwargs[key] = tuple(kwargs[key])
  return Autoencoder(num_classes=num_classes, **kwargs)

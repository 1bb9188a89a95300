"""A small DCGAN-style generator and discriminator for 8x8 to 32x32 images.

Sized for scikit-learn's digits on CPU (`common.data.gan_images`). The
generator is a stack of blocks whose intermediate outputs are addressable,
so methods can optimise in a generator's *feature domain* (GIFD) or start
generation from an intermediate layer:

  layer 0: z [b, latent_dim]
  block 0: Dense -> reshape [b, 4, 4, w * 2^u] -> LeakyReLU   (-> layer 1)
  block i (1..u): nearest x2 upsample -> conv3x3 (channels halve)
                  -> LeakyReLU                                 (-> layer i+1)
  block u+1: conv3x3 -> tanh image [b, s, s, c]                (-> layer u+2)

with u = log2(image_size / 4) upsamplings (8x8: u = 1, 3 blocks... 32x32:
u = 3). `features_at(z, l)` is the input of block `l` (`l = 0` is `z`,
`l = num_layers` the image) and `generate_from(f, l)` runs blocks `l..`:
`generate_from(features_at(z, l), l) == __call__(z)["images"]` for every l.

The discriminator halves the resolution with stride-2 conv3x3 blocks down
to 4x4, then a Dense gives one logit per image. No normalisation layers:
no model state, so a GAN step has no BatchNorm statistics to thread.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from common.models import registry

Dtype = Any


def _num_up(image_size: int) -> int:
  u = int(round(math.log2(image_size / 4)))
  if image_size < 8 or 4 * 2 ** u != image_size:
    raise ValueError(f"image_size={image_size}; allowed 8, 16, 32, 64")
  return u


@registry.register_model("gan_generator")
class Generator(nn.Module):
  """DCGAN-lite generator `z [b, latent] -> {"images": [b, s, s, c]}`.

  Attributes:
    num_classes: unused (the registry's first argument).
    image_size: output side `s` (8, 16, 32 or 64).
    channels: output channels `c`.
    width: channels of the last hidden block; the first has
      `width * 2^u`.
    dtype: computation dtype.
  """

  num_classes: int = 0
  image_size: int = 8
  channels: int = 1
  width: int = 32
  dtype: Dtype = jnp.float32

  @property
  def num_layers(self) -> int:
    """Number of blocks; `features_at(z, num_layers)` is the image."""
    return _num_up(self.image_size) + 2

  def setup(self):
    u = _num_up(self.image_size)
    self.c0 = self.width * 2 ** u
    self.stem = nn.Dense(16 * self.c0, dtype=self.dtype, name="stem")
    self.ups = [nn.Conv(self.width * 2 ** (u - i), (3, 3), dtype=self.dtype,
                        name=f"up{i}") for i in range(1, u + 1)]
    self.out = nn.Conv(self.channels, (3, 3), dtype=self.dtype, name="out")

  def _block(self, i: int, h: jax.Array) -> jax.Array:
    if i == 0:
      h = self.stem(h).reshape(h.shape[0], 4, 4, self.c0)
      return nn.leaky_relu(h, 0.2)
    if i <= len(self.ups):
      b, s, _, c = h.shape
      h = jax.image.resize(h, (b, 2 * s, 2 * s, c), "nearest")
      return nn.leaky_relu(self.ups[i - 1](h), 0.2)
    return jnp.tanh(self.out(h).astype(jnp.float32))

  def generate_from(self, features: jax.Array, start_layer: int
                    ) -> jax.Array:
    """Images `[b, s, s, c]` from the input `features` of block
    `start_layer` (0: a latent `[b, latent]`)."""
    h = features
    for i in range(start_layer, self.num_layers):
      h = self._block(i, h)
    return h

  def features_at(self, z: jax.Array, layer: int) -> jax.Array:
    """The input of block `layer` for latents `z [b, latent]` (layer 0:
    `z`; layer 1: `[b, 4, 4, w 2^u]`; ...; `num_layers`: the image)."""
    h = z
    for i in range(layer):
      h = self._block(i, h)
    return h

  def __call__(self, z: jax.Array, train: bool = False
               ) -> dict[str, jax.Array]:
    del train
    return {"images": self.generate_from(z, 0)}


@registry.register_model("gan_discriminator")
class Discriminator(nn.Module):
  """Images `[b, s, s, c]` -> {"logits": [b], "features": [b, d]}.

  Attributes:
    num_classes: unused.
    width: channels of the first block (doubling per halving).
    dtype: computation dtype.
  """

  num_classes: int = 0
  width: int = 32
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False
               ) -> dict[str, jax.Array]:
    del train
    h, c = x.astype(self.dtype), self.width
    h = nn.leaky_relu(nn.Conv(c, (3, 3), dtype=self.dtype)(h), 0.2)
    while h.shape[1] > 4:
      c *= 2
      h = nn.leaky_relu(nn.Conv(c, (3, 3), strides=2, dtype=self.dtype)(h),
                        0.2)
    feats = h.reshape(h.shape[0], -1)
    logit = nn.Dense(1, dtype=self.dtype)(feats)[:, 0]
    return {"logits": logit.astype(jnp.float32), "features": feats}

"""Convolutional encoder and decoder of the Koopman autoencoder on 2-D fields.

The architecture of the official code of "Information Shapes Koopman
Representation" (arXiv:2510.13025; Wenxuan52/InformationKoopman,
`model/physical_simulation/{Cylinder/cylinder_model.py,Dam/dam_model.py}`;
the two files define the same network) for CFDBench's 64x64 flows, written
in flax with channels last:

encoder  conv7 -> pool -> relu; conv5 -> relu -> pool; conv3 -> pool ->
         relu; conv3 -> pool -> relu; conv3 -> relu -> dropout(0.1);
         flatten (4x4x256 = 4096) -> linear -> latent (512);
decoder  linear -> relu -> dropout -> [4, 4, 256]; conv3 -> relu;
         (2x bilinear upsampling -> conv -> relu) with kernels 3, 3, 5;
         upsampling -> conv7 (to C channels); then 1x1 convs C -> 64 -> 32
         -> C with relu between (the official output refinement).

Pools are 2x2 averages. The official decoder's transposed convolutions have
stride 1 and padding k // 2, which is a "SAME" convolution with a flipped
kernel: the same family of functions, so plain `nn.Conv` is used. Its
upsampling is `nn.UpsamplingBilinear2d`, i.e. bilinear with aligned corners
(`upsample2x_aligned`), not `jax.image.resize`'s half-pixel convention.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

FILTERS = (16, 32, 64, 128, 256)   # official state_filter_feature_dim


def _aligned_weights(n: int) -> np.ndarray:
  """`[2n, n]` bilinear weights with aligned corners: output i samples the
  input at i (n - 1) / (2n - 1)."""
  pos = np.arange(2 * n) * (n - 1) / max(2 * n - 1, 1)
  lo = np.minimum(np.floor(pos).astype(int), n - 1)
  hi = np.minimum(lo + 1, n - 1)
  frac = pos - lo
  w = np.zeros((2 * n, n), np.float32)
  w[np.arange(2 * n), lo] += 1.0 - frac
  w[np.arange(2 * n), hi] += frac
  return w


def upsample2x_aligned(x: jax.Array) -> jax.Array:
  """`[b, h, w, c] -> [b, 2h, 2w, c]`, bilinear with aligned corners."""
  wh = jnp.asarray(_aligned_weights(x.shape[1]), x.dtype)
  ww = jnp.asarray(_aligned_weights(x.shape[2]), x.dtype)
  return jnp.einsum("Hh,Ww,bhwc->bHWc", wh, ww, x)


def _pool(x: jax.Array) -> jax.Array:
  return nn.avg_pool(x, (2, 2), strides=(2, 2))


class FieldEncoder(nn.Module):
  """`[b, H, W, C] -> [b, latent_dim]` (H, W divisible by 16)."""
  latent_dim: int = 512
  filters: Sequence[int] = FILTERS
  dropout: float = 0.1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    f = tuple(self.filters)
    conv = lambda i, k: nn.Conv(f[i], (k, k), padding="SAME",
                                dtype=self.dtype)
    h = nn.relu(_pool(conv(0, 7)(x.astype(self.dtype))))
    h = _pool(nn.relu(conv(1, 5)(h)))
    h = nn.relu(_pool(conv(2, 3)(h)))
    h = nn.relu(_pool(conv(3, 3)(h)))
    h = nn.relu(conv(4, 3)(h))
    h = nn.Dropout(self.dropout, deterministic=not train)(h)
    h = h.reshape(h.shape[0], -1)
    return nn.Dense(self.latent_dim, dtype=self.dtype)(h).astype(jnp.float32)


class FieldDecoder(nn.Module):
  """`[b, latent_dim] -> [b, H, W, channels]`, H = W = 16 * `base`."""
  base: int = 4
  filters: Sequence[int] = FILTERS
  dropout: float = 0.1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z: jax.Array, channels: int,
               train: bool = False) -> jax.Array:
    f = tuple(self.filters)
    conv = lambda width, k: nn.Conv(width, (k, k), padding="SAME",
                                    dtype=self.dtype)
    h = nn.relu(nn.Dense(self.base * self.base * f[4],
                         dtype=self.dtype)(z.astype(self.dtype)))
    h = nn.Dropout(self.dropout, deterministic=not train)(h)
    h = h.reshape(h.shape[0], self.base, self.base, f[4])
    h = nn.relu(conv(f[3], 3)(h))
    for width, k in ((f[2], 3), (f[1], 3), (f[0], 5)):
      h = nn.relu(conv(width, k)(upsample2x_aligned(h)))
    h = conv(channels, 7)(upsample2x_aligned(h))
    h = nn.relu(conv(64, 1)(h))
    h = nn.relu(conv(32, 1)(h))
    return conv(channels, 1)(h).astype(jnp.float32)

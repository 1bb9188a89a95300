"""CoTTA's teacher augmentations in JAX (one parameter draw per batch).

Mirrors `get_tta_transforms()` of qinenergy/cotta (`cifar/cotta.py`):
clip -> ColorJitterPro(brightness [0.6, 1.4], contrast [0.7, 1.3],
saturation [0.5, 1.5], hue [-0.06, 0.06], gamma [0.7, 1.3]) -> edge pad
n/2 -> RandomAffine(+-15 deg, translate 1/16, scale [0.9, 1.1], bilinear)
-> GaussianBlur(5, sigma [0.001, 0.5]) -> CenterCrop(n) -> HFlip(0.5)
-> Gaussian noise (std 0.005) -> clip. The torchvision transform there is
applied to the whole batch tensor, so every random parameter is drawn once
per batch (and per augmentation); we do the same.

Deviations, for the record: the colour operations run in a fixed order
(ColorJitterPro draws a random order); the hue shift is a rotation in YIQ
space (torchvision converts to HSV); edge pad + affine + crop is computed as
an affine resampling of the unpadded image with edge clamping (identical
except for the blur's border rows, which here see edge-extended rather than
affinely-resampled padding).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

_RGB_TO_YIQ = jnp.array([[0.299, 0.587, 0.114],
                         [0.596, -0.274, -0.322],
                         [0.211, -0.523, 0.312]], jnp.float32)
_YIQ_TO_RGB = jnp.linalg.inv(_RGB_TO_YIQ)


def _gray(x: jax.Array) -> jax.Array:
  """ITU-R 601 luma `[b, h, w, 1]` (torchvision's rgb_to_grayscale)."""
  if x.shape[-1] == 1:
    return x
  return (0.299 * x[..., :1] + 0.587 * x[..., 1:2] + 0.114 * x[..., 2:3])


def color_jitter(x, brightness, contrast, saturation, hue, gamma):
  """Colour jitter with scalar factors on `[b, h, w, c]` images in [0, 1]."""
  x = jnp.clip(x * brightness, 0.0, 1.0)
  mean = jnp.mean(_gray(x), axis=(1, 2, 3), keepdims=True)
  x = jnp.clip((x - mean) * contrast + mean, 0.0, 1.0)
  if x.shape[-1] == 3:
    gray = _gray(x)
    x = jnp.clip((x - gray) * saturation + gray, 0.0, 1.0)
    yiq = x @ _RGB_TO_YIQ.T
    angle = 2.0 * jnp.pi * hue
    c, s = jnp.cos(angle), jnp.sin(angle)
    i = c * yiq[..., 1] - s * yiq[..., 2]
    q = s * yiq[..., 1] + c * yiq[..., 2]
    x = jnp.clip(jnp.stack([yiq[..., 0], i, q], -1) @ _YIQ_TO_RGB.T, 0, 1)
  return jnp.power(jnp.maximum(x, 0.0), gamma)


def affine(x, angle_deg, tx, ty, scale):
  """Bilinear rotation/scale/translation about the centre, edge clamped."""
  _, h, w, _ = x.shape
  theta = jnp.deg2rad(angle_deg)
  cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
  yy, xx = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32),
                        jnp.arange(w, dtype=jnp.float32), indexing="ij")
  # Inverse map: output pixel -> input coordinate.
  dy, dx = yy - cy - ty, xx - cx - tx
  cos, sin = jnp.cos(theta), jnp.sin(theta)
  src_x = (cos * dx + sin * dy) / scale + cx
  src_y = (-sin * dx + cos * dy) / scale + cy
  y0 = jnp.floor(src_y)
  x0 = jnp.floor(src_x)
  wy, wx = src_y - y0, src_x - x0
  def at(yi, xi):
    yi = jnp.clip(yi, 0, h - 1).astype(jnp.int32)
    xi = jnp.clip(xi, 0, w - 1).astype(jnp.int32)
    return x[:, yi, xi, :]
  top = at(y0, x0) * (1 - wx)[..., None] + at(y0, x0 + 1) * wx[..., None]
  bot = (at(y0 + 1, x0) * (1 - wx)[..., None]
         + at(y0 + 1, x0 + 1) * wx[..., None])
  return top * (1 - wy)[..., None] + bot * wy[..., None]


def gaussian_blur(x, sigma, size: int = 5):
  """Separable Gaussian blur with edge padding."""
  r = size // 2
  t = jnp.arange(-r, r + 1, dtype=jnp.float32)
  k = jnp.exp(-0.5 * jnp.square(t / sigma))
  k = k / jnp.sum(k)
  xp = jnp.pad(x, ((0, 0), (r, r), (0, 0), (0, 0)), mode="edge")
  x = sum(k[i] * xp[:, i:i + x.shape[1]] for i in range(size))
  xp = jnp.pad(x, ((0, 0), (0, 0), (r, r), (0, 0)), mode="edge")
  return sum(k[i] * xp[:, :, i:i + x.shape[2]] for i in range(size))


def augment(rng: jax.Array, x: jax.Array, noise_std: float = 0.005,
            hflip: bool = True) -> jax.Array:
  """One CoTTA augmentation of the batch `x` `[b, h, w, c]` in [0, 1].

  Args:
    rng: key; every random parameter is drawn once for the whole batch
      (the per-pixel Gaussian noise excepted).
    x: float32 images in [0, 1].
    noise_std: std of the additive Gaussian noise.
    hflip: the official random horizontal flip (p = 0.5). Static; turn it
      off for data whose labels are not mirror-invariant (digits).

  Returns:
    Augmented images, same shape, clipped to [0, 1].
  """
  ks = jax.random.split(rng, 12)
  u = lambda k, lo, hi: jax.random.uniform(k, (), jnp.float32, lo, hi)
  n = x.shape[1]
  x = jnp.clip(x, 0.0, 1.0)
  x = color_jitter(x, u(ks[0], 0.6, 1.4), u(ks[1], 0.7, 1.3),
                   u(ks[2], 0.5, 1.5), u(ks[3], -0.06, 0.06),
                   u(ks[4], 0.7, 1.3))
  # torchvision translates by up to 1/16 of the (padded, 2n) image size.
  max_t = 2.0 * n / 16.0
  x = affine(x, u(ks[5], -15.0, 15.0), jnp.round(u(ks[6], -max_t, max_t)),
             jnp.round(u(ks[7], -max_t, max_t)), u(ks[8], 0.9, 1.1))
  x = gaussian_blur(x, u(ks[9], 0.001, 0.5))
  if hflip:
    x = jnp.where(jax.random.bernoulli(ks[10], 0.5), x[:, :, ::-1, :], x)
  x = x + noise_std * jax.random.normal(ks[11], x.shape, x.dtype)
  return jnp.clip(x, 0.0, 1.0)

"""CoTTA's teacher augmentations in JAX (one parameter draw per batch).

Follows `get_tta_transforms()` of qinenergy/cotta (`cifar/cotta.py`,
`cifar/my_transforms.py`) with torchvision's tensor semantics:

  Clip(0, 1) -> ColorJitterPro(brightness [0.6, 1.4], contrast [0.7, 1.3],
  saturation [0.5, 1.5], hue [-0.06, 0.06], gamma [0.7, 1.3], the five in a
  random order) -> Pad(n // 2, edge) -> RandomAffine(+-15 deg, translate
  1/16 of the padded size, scale [0.9, 1.1], bilinear, zero fill) ->
  GaussianBlur(5, sigma [0.001, 0.5], reflect) -> CenterCrop(n) ->
  RandomHorizontalFlip(0.5) -> GaussianNoise(std 0.005) -> Clip(0, 1).

The torchvision transform is applied to the whole batch tensor, so every
random parameter is drawn once per batch (and per augmentation); we do the
same. Pad + affine + blur + crop is computed on the `(n + 4)^2` window of
the padded, transformed image that the crop and the blur's 5x5 support
read, which gives the official pixels without building the padded image
(exactly so for n >= 4, where the window lies inside the padded image).
`tests/algos/tta/test_cotta_augment_torch.py` checks each operation
against a plain-torch reference of the torchvision semantics.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

BLUR_SIZE = 5
# torchvision's rgb_to_grayscale (ITU-R 601-2 luma).
_LUMA = (0.2989, 0.587, 0.114)


def grayscale(x: jax.Array) -> jax.Array:
  """`[b, h, w, 1]` luma of `[b, h, w, c]` images (c = 1: the image)."""
  if x.shape[-1] == 1:
    return x
  return (_LUMA[0] * x[..., :1] + _LUMA[1] * x[..., 1:2]
          + _LUMA[2] * x[..., 2:3])


def _blend(x, y, ratio):
  return jnp.clip(ratio * x + (1.0 - ratio) * y, 0.0, 1.0)


def brightness(x, factor):
  return _blend(x, jnp.zeros_like(x), factor)


def contrast(x, factor):
  """Blend with each image's mean luma."""
  return _blend(x, jnp.mean(grayscale(x), axis=(1, 2, 3), keepdims=True),
                factor)


def saturation(x, factor):
  if x.shape[-1] == 1:
    return x
  return _blend(x, grayscale(x), factor)


def rgb_to_hsv(x: jax.Array) -> jax.Array:
  """`[..., 3]` RGB in [0, 1] -> HSV, hue in [0, 1)."""
  r, g, b = x[..., 0], x[..., 1], x[..., 2]
  v = jnp.max(x, -1)
  chroma = v - jnp.min(x, -1)
  flat = chroma == 0
  s = chroma / jnp.where(flat, 1.0, v)
  c = jnp.where(flat, 1.0, chroma)
  rc, gc, bc = (v - r) / c, (v - g) / c, (v - b) / c
  is_r = v == r
  is_g = (v == g) & ~is_r
  h = jnp.where(is_r, bc - gc, jnp.where(is_g, 2.0 + rc - bc,
                                          4.0 + gc - rc))
  h = jnp.where(flat, 0.0, h)
  return jnp.stack([jnp.mod(h / 6.0 + 1.0, 1.0), s, v], -1)


def hsv_to_rgb(x: jax.Array) -> jax.Array:
  """Inverse of `rgb_to_hsv` (the six hue sectors)."""
  h, s, v = x[..., 0], x[..., 1], x[..., 2]
  sector = jnp.floor(h * 6.0)
  f = h * 6.0 - sector
  sector = jnp.mod(sector.astype(jnp.int32), 6)
  p = jnp.clip(v * (1.0 - s), 0.0, 1.0)
  q = jnp.clip(v * (1.0 - s * f), 0.0, 1.0)
  t = jnp.clip(v * (1.0 - s * (1.0 - f)), 0.0, 1.0)
  table = jnp.stack([jnp.stack(c, -1) for c in (
      (v, q, p, p, t, v), (t, v, v, q, p, p), (p, p, t, v, v, q))], -2)
  return jnp.take_along_axis(table, sector[..., None, None], -1)[..., 0]


def hue(x, factor):
  """Shifts the HSV hue by `factor` (a fraction of the colour circle)."""
  if x.shape[-1] == 1:
    return x
  hsv = rgb_to_hsv(x)
  hsv = hsv.at[..., 0].set(jnp.mod(hsv[..., 0] + factor, 1.0))
  return hsv_to_rgb(hsv)


def gamma(x, factor):
  """`x ** gamma` after my_transforms' clamp to [1e-8, 1] (NaN guard)."""
  return jnp.clip(jnp.power(jnp.clip(x, 1e-8, 1.0), factor), 0.0, 1.0)


COLOR_OPS = (brightness, contrast, saturation, hue, gamma)


def color_jitter(x, factors: jax.Array, order: jax.Array) -> jax.Array:
  """ColorJitterPro: `COLOR_OPS[order[k]]` with `factors[order[k]]`, k =
  0..4 (`order` a permutation of 5, traced)."""
  branches = [lambda y, f, op=op: op(y, f) for op in COLOR_OPS]

  def body(k, y):
    return jax.lax.switch(order[k], branches, y, factors[order[k]])
  return jax.lax.fori_loop(0, len(COLOR_OPS), body, x)


def _bilinear_zero_fill(x, src_y, src_x, pad: int):
  """Bilinear samples of the edge-padded image (`pad` pixels each side),
  zero outside it, at `[H, W]` coordinates of the unpadded image."""
  _, h, w, _ = x.shape
  y0, x0 = jnp.floor(src_y), jnp.floor(src_x)
  wy, wx = src_y - y0, src_x - x0

  def at(yi, xi):
    inside = ((yi >= -pad) & (yi <= h - 1 + pad) & (xi >= -pad)
              & (xi <= w - 1 + pad))
    yc = jnp.clip(yi, 0, h - 1).astype(jnp.int32)
    xc = jnp.clip(xi, 0, w - 1).astype(jnp.int32)
    return x[:, yc, xc, :] * inside[..., None]
  top = at(y0, x0) * (1 - wx)[..., None] + at(y0, x0 + 1) * wx[..., None]
  bot = (at(y0 + 1, x0) * (1 - wx)[..., None]
         + at(y0 + 1, x0 + 1) * wx[..., None])
  return top * (1 - wy)[..., None] + bot * wy[..., None]


def blur_kernel(sigma) -> jax.Array:
  """torchvision's 1-D Gaussian kernel of size `BLUR_SIZE`."""
  r = (BLUR_SIZE - 1) / 2.0
  t = jnp.linspace(-r, r, BLUR_SIZE)
  k = jnp.exp(-0.5 * jnp.square(t / sigma))
  return k / jnp.sum(k)


def pad_affine_blur_crop(x, angle_deg, tx, ty, scale, sigma):
  """Edge pad n // 2 -> affine about the centre -> Gaussian blur ->
  centre crop, on `[b, n, n, c]` images (the crop's window only).

  Args:
    x: images in [0, 1].
    angle_deg: rotation in degrees (torchvision's sign convention).
    tx, ty: translation in pixels (integers, as torchvision rounds them).
    scale: zoom factor.
    sigma: blur standard deviation.
  """
  _, h, w, _ = x.shape
  pad = h // 2
  r = BLUR_SIZE // 2
  # Output pixels of the crop and the blur's border, unpadded coordinates.
  yy, xx = jnp.meshgrid(jnp.arange(-r, h + r, dtype=jnp.float32),
                        jnp.arange(-r, w + r, dtype=jnp.float32),
                        indexing="ij")
  cy, cx = (h - 1) / 2.0, (w - 1) / 2.0   # the padded image's centre
  theta = jnp.deg2rad(angle_deg)
  cos, sin = jnp.cos(theta), jnp.sin(theta)
  dy, dx = yy - cy - ty, xx - cx - tx   # inverse map: output -> input
  src_x = (cos * dx + sin * dy) / scale + cx
  src_y = (-sin * dx + cos * dy) / scale + cy
  window = _bilinear_zero_fill(x, src_y, src_x, pad)
  k = blur_kernel(sigma)
  window = sum(k[i] * window[:, i:i + h] for i in range(BLUR_SIZE))
  return sum(k[i] * window[:, :, i:i + w] for i in range(BLUR_SIZE))


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
  ks = jax.random.split(rng, 13)
  u = lambda k, lo, hi: jax.random.uniform(k, (), jnp.float32, lo, hi)
  n = x.shape[1]
  x = jnp.clip(x, 0.0, 1.0)
  factors = jnp.stack([u(ks[0], 0.6, 1.4), u(ks[1], 0.7, 1.3),
                       u(ks[2], 0.5, 1.5), u(ks[3], -0.06, 0.06),
                       u(ks[4], 0.7, 1.3)])
  x = color_jitter(x, factors, jax.random.permutation(ks[5], 5))
  # Translation up to 1/16 of the padded size, rounded to whole pixels.
  max_t = (n + 2 * (n // 2)) / 16.0
  x = pad_affine_blur_crop(
      x, u(ks[6], -15.0, 15.0), jnp.round(u(ks[7], -max_t, max_t)),
      jnp.round(u(ks[8], -max_t, max_t)), u(ks[9], 0.9, 1.1),
      u(ks[10], 0.001, 0.5))
  if hflip:
    x = jnp.where(jax.random.bernoulli(ks[11], 0.5), x[:, :, ::-1, :], x)
  x = x + noise_std * jax.random.normal(ks[12], x.shape, x.dtype)
  return jnp.clip(x, 0.0, 1.0)

"""CoTTA's augmentation ops against plain-torch references of the official
transforms (qinenergy/cotta `cifar/cotta.py` `get_tta_transforms`,
`cifar/my_transforms.py` `ColorJitterPro`), with fixed parameters.

torchvision is not installed (it is ~5 GB); each reference below is written
in plain torch from torchvision's tensor semantics for that op: `_blend`
with clamp, ITU-R 601-2 luma (0.2989, 0.587, 0.114), contrast against the
per-image mean luma, hue shifted in HSV, ColorJitterPro's clamp to
[1e-8, 1] before gamma, edge padding, the affine's inverse matrix about the
centre sampled by `grid_sample` (bilinear, zero fill, pixel-centred grid),
the 5-tap Gaussian blur with reflect padding, and the centre crop.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from algos.tta import cotta_augment as aug

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _images(n=8, c=3, b=2, seed=0):
  rs = np.random.RandomState(seed)
  x = rs.uniform(0, 1, (b, n, n, c)).astype(np.float32)
  x[0, :2, :2] = 0.5   # grey pixels: zero chroma in the HSV conversion
  return x


def _t(x):  # NHWC numpy -> NCHW torch
  return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def _n(y):  # NCHW torch -> NHWC numpy
  return y.numpy().transpose(0, 2, 3, 1)


# ---------------------------------------------------- torch references
def t_luma(x):
  if x.shape[1] == 1:
    return x
  return (0.2989 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]


def t_blend(a, b, ratio):
  return (ratio * a + (1.0 - ratio) * b).clamp(0.0, 1.0)


def t_brightness(x, f):
  return t_blend(x, torch.zeros_like(x), f)


def t_contrast(x, f):
  return t_blend(x, t_luma(x).mean(dim=(-3, -2, -1), keepdim=True), f)


def t_saturation(x, f):
  return x if x.shape[1] == 1 else t_blend(x, t_luma(x), f)


def t_hue(x, f):
  """RGB -> HSV, hue + f mod 1, HSV -> RGB (sector formulas)."""
  if x.shape[1] == 1:
    return x
  r, g, b = x[:, 0], x[:, 1], x[:, 2]
  mx, mn = x.max(1).values, x.min(1).values
  d = mx - mn
  safe = torch.where(d > 0, d, torch.ones_like(d))
  h = torch.zeros_like(mx)
  h = torch.where(mx == b, 4.0 + (r - g) / safe, h)
  h = torch.where(mx == g, 2.0 + (b - r) / safe, h)
  h = torch.where(mx == r, (g - b) / safe, h)
  h = torch.where(d > 0, torch.remainder(h / 6.0, 1.0), torch.zeros_like(h))
  s = torch.where(mx > 0, d / torch.where(mx > 0, mx, torch.ones_like(mx)),
                  torch.zeros_like(mx))
  h = torch.remainder(h + f, 1.0)
  k = lambda m: torch.remainder(m + h * 6.0, 6.0)
  chan = lambda m: mx - mx * s * torch.clamp(
      torch.minimum(k(m), 4.0 - k(m)), 0.0, 1.0)
  return torch.stack([chan(5.0), chan(3.0), chan(1.0)], 1)


def t_gamma(x, g):
  return (x.clamp(1e-8, 1.0) ** g).clamp(0.0, 1.0)


def t_pad_affine_blur_crop(x, angle, tx, ty, scale, sigma):
  n, c = x.shape[-1], x.shape[1]
  pad = n // 2
  xp = F.pad(x, (pad, pad, pad, pad), mode="replicate")
  size = xp.shape[-1]
  rot = math.radians(angle)
  cos, sin = math.cos(rot), math.sin(rot)
  # torchvision's inverse affine matrix (centre 0, no shear).
  m = torch.tensor([[cos, sin], [-sin, cos]], dtype=torch.float64) / scale
  offset = m @ torch.tensor([-tx, -ty], dtype=torch.float64)
  j = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
  yy, xx = torch.meshgrid(j, j, indexing="ij")
  gx = (m[0, 0] * xx + m[0, 1] * yy + offset[0]) / (size / 2.0)
  gy = (m[1, 0] * xx + m[1, 1] * yy + offset[1]) / (size / 2.0)
  grid = torch.stack([gx, gy], -1).float()[None].expand(x.shape[0], -1, -1,
                                                       -1)
  out = F.grid_sample(xp, grid, mode="bilinear", padding_mode="zeros",
                      align_corners=False)
  t = torch.linspace(-2.0, 2.0, 5)
  k1 = torch.exp(-0.5 * (t / sigma) ** 2)
  k1 = k1 / k1.sum()
  k2 = torch.outer(k1, k1).expand(c, 1, 5, 5)
  out = F.conv2d(F.pad(out, (2, 2, 2, 2), mode="reflect"), k2, groups=c)
  top = int(round((size - n) / 2.0))
  return out[..., top:top + n, top:top + n]


T_COLOR = (t_brightness, t_contrast, t_saturation, t_hue, t_gamma)


# ---------------------------------------------------------------- tests
def test_color_ops_match_torch():
  cases = ((0, 0.6), (0, 1.37), (1, 0.7), (1, 1.3), (2, 0.5), (2, 1.45),
           (3, -0.06), (3, 0.05), (4, 0.7), (4, 1.3))
  for channels in (3, 1):
    x = _images(c=channels)
    for index, factor in cases:
      ours = aug.COLOR_OPS[index](jnp.asarray(x), jnp.float32(factor))
      ref = _n(T_COLOR[index](_t(x), factor))
      np.testing.assert_allclose(np.asarray(ours), ref, atol=2e-6,
                                 err_msg=f"op {index}, factor {factor}")


def test_color_jitter_applies_the_ops_in_the_drawn_order():
  x = _images()
  factors = np.asarray([1.3, 0.8, 1.4, 0.04, 0.75], np.float32)
  for order in ((0, 1, 2, 3, 4), (4, 3, 2, 1, 0), (2, 4, 0, 3, 1)):
    ours = jax.jit(aug.color_jitter)(jnp.asarray(x), jnp.asarray(factors),
                                     jnp.asarray(order))
    ref = _t(x)
    for i in order:
      ref = T_COLOR[i](ref, float(factors[i]))
    np.testing.assert_allclose(np.asarray(ours), _n(ref), atol=3e-6)


def test_pad_affine_blur_crop_matches_torch():
  cases = ((0.0, 0, 0, 1.0, 0.001), (12.3, 3, -2, 0.93, 0.4),
           # The extremes: corners of the window sample the zero fill.
           (-15.0, 4, 4, 0.9, 0.5), (15.0, -4, 3, 1.1, 0.2))
  fn = jax.jit(aug.pad_affine_blur_crop)
  for n in (8, 32):
    x = _images(n=n)
    for angle, tx, ty, scale, sigma in cases:
      ours = fn(jnp.asarray(x), angle, float(tx), float(ty), scale, sigma)
      ref = _n(t_pad_affine_blur_crop(_t(x), angle, tx, ty, scale, sigma))
      np.testing.assert_allclose(np.asarray(ours), ref, atol=2e-5,
                                 err_msg=f"n={n}, angle={angle}")


def test_augment_draws_one_parameter_set_per_batch():
  """With the noise off, two copies of an image in one batch get the same
  augmentation (torchvision on a batch tensor), in [0, 1]."""
  x = np.repeat(_images(n=8)[:1], 2, axis=0)
  for seed in range(3):
    y = np.asarray(aug.augment(jax.random.PRNGKey(seed), jnp.asarray(x),
                               noise_std=0.0))
    assert y.min() >= 0.0 and y.max() <= 1.0 and not np.allclose(y, x)
    np.testing.assert_array_equal(y[0], y[1])

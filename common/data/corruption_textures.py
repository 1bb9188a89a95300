"""Kernels, warps and textures behind the CIFAR-10-C corruptions (numpy).

Written from the definitions used by `ImageNet-C/create_c/make_cifar_c.py`
(github.com/hendrycks/robustness, arXiv:1903.12261) and from ImageMagick's
`MotionBlurImage` (MagickCore/effect.c), which that generator calls through
Wand. `frost_texture` is ours: it replaces the reference's frost
photographs (see `common.data.corruptions`).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage


def _gaussian_taps(ksize: int, sigma: float) -> np.ndarray:
  """OpenCV's `getGaussianKernel(ksize, sigma)`: [ksize], sums to 1."""
  offsets = np.arange(ksize) - (ksize - 1) / 2
  taps = np.exp(-offsets**2 / (2 * sigma**2))
  return taps / taps.sum()


def disk_kernel(radius: float, alias_blur: float) -> np.ndarray:
  """The defocus kernel: a normalised disk, anti-aliased by a small blur.

  Args:
    radius: disk radius in pixels; the disk is the lattice points with
      `x^2 + y^2 <= radius^2` (just the centre for radius < 1).
    alias_blur: sigma of the 3x3 (5x5 for radius > 8) Gaussian blur.

  Returns:
    float64 `[k, k]` kernel (k odd, zero border trimmed), summing to 1.
  """
  if radius <= 8:
    coords, ksize = np.arange(-8, 9), 3
  else:
    coords, ksize = np.arange(-radius, radius + 1), 5
  xs, ys = np.meshgrid(coords, coords)
  disk = (xs**2 + ys**2 <= radius**2).astype(np.float64)
  disk /= disk.sum()
  taps = _gaussian_taps(ksize, alias_blur)
  for axis in (0, 1):  # GaussianBlur is separable; border reflect-101
    disk = ndimage.correlate1d(disk, taps, axis=axis, mode="mirror")
  # Dropping all-zero border rings is exact and makes the filtering cheap.
  nonzero = np.nonzero(disk.any(axis=0))[0]
  half = max(len(coords) // 2 - nonzero[0], nonzero[-1] - len(coords) // 2)
  mid = len(coords) // 2
  return disk[mid - half:mid + half + 1, mid - half:mid + half + 1]


def motion_blur_batch(x: np.ndarray, radius: float, sigma: float,
                      angles_deg: np.ndarray) -> np.ndarray:
  """ImageMagick's motion blur: a one-sided Gaussian streak per image.

  Output pixel `(r, c)` is `sum_i k_i * x[r + dy_i, c + dx_i]` for
  `i = 0 .. width - 1`, `width = 2 * ceil(radius) + 1`,
  `k_i ~ exp(-i^2 / (2 sigma^2))` normalised, `dx_i = ceil(i cos(a) - 1/2)`,
  `dy_i = ceil(i sin(a) - 1/2)`; reads outside the image repeat the edge.

  Args:
    x: float `[n, h, w, c]` images.
    radius: kernel radius (sets the width).
    sigma: Gaussian sigma of the taps, in pixels along the streak.
    angles_deg: `[n]` streak angle of each image, in degrees.

  Returns:
    float `[n, h, w, c]`.
  """
  n, h, w, _ = x.shape
  width = 2 * math.ceil(radius) + 1
  steps = np.arange(width)
  taps = np.exp(-steps**2 / (2.0 * sigma**2))
  taps /= taps.sum()
  angles = np.deg2rad(np.asarray(angles_deg, np.float64))
  dx = np.ceil(steps[None] * np.cos(angles)[:, None] - 0.5).astype(int)
  dy = np.ceil(steps[None] * np.sin(angles)[:, None] - 0.5).astype(int)
  batch = np.arange(n)[:, None, None]
  out = np.zeros(x.shape, np.float64)
  for i in range(width):
    rows = np.clip(np.arange(h)[None] + dy[:, i:i + 1], 0, h - 1)  # [n, h]
    cols = np.clip(np.arange(w)[None] + dx[:, i:i + 1], 0, w - 1)  # [n, w]
    out += taps[i] * x[batch, rows[:, :, None], cols[:, None, :]]
  return out


def plasma_fractal(rng: np.random.Generator, n: int, mapsize: int = 32,
                   decay: float = 3.0) -> np.ndarray:
  """Diamond-square height maps on a torus, normalised to [0, 1].

  Each level sets the new points to the mean of their four neighbours plus
  `wibble * U(-wibble, wibble)`, starting from `wibble = 100` and dividing
  it by `decay` per level, as the reference does (so the noise amplitude is
  `wibble^2`; a larger `decay` gives a smoother map).

  Args:
    rng: random generator.
    n: number of independent maps.
    mapsize: side, a power of two.
    decay: the reference's `wibbledecay`.

  Returns:
    float64 `[n, mapsize, mapsize]`, min 0 and max 1 per map.
  """
  if mapsize & (mapsize - 1):
    raise ValueError(f"mapsize must be a power of two, got {mapsize}")
  m = np.zeros((n, mapsize, mapsize))
  step, wibble = mapsize, 100.0

  def noisy_mean(total):
    return total / 4 + wibble * rng.uniform(-wibble, wibble, total.shape)

  while step >= 2:
    half = step // 2
    # Square step: cell centres from their four corners.
    corners = m[:, 0::step, 0::step]
    total = corners + np.roll(corners, -1, axis=1)
    total = total + np.roll(total, -1, axis=2)
    m[:, half::step, half::step] = noisy_mean(total)
    # Diamond step: edge midpoints from two corners and two centres.
    centres = m[:, half::step, half::step]
    corners = m[:, 0::step, 0::step]
    top = (corners + np.roll(corners, -1, axis=2) + centres
           + np.roll(centres, 1, axis=1))
    m[:, 0::step, half::step] = noisy_mean(top)
    left = (corners + np.roll(corners, -1, axis=1) + centres
            + np.roll(centres, 1, axis=2))
    m[:, half::step, 0::step] = noisy_mean(left)
    step //= 2
    wibble /= decay
  m -= m.min(axis=(1, 2), keepdims=True)
  return m / m.max(axis=(1, 2), keepdims=True)


def frost_texture(rng: np.random.Generator, size: int = 96) -> np.ndarray:
  """A procedural frost image: crystal streaks over a soft haze.

  Stands in for the reference's frost photographs. Crystals are sparse
  seeds streaked by one-sided motion blurs in four random directions (the
  max over directions gives needle clusters); the haze is a smooth plasma
  fractal. Tinted bluish white. Mean ~0.47, std ~0.17 of 255 (our choice).

  Args:
    rng: random generator.
    size: side of the square texture (crops of 32x32 are taken from it).

  Returns:
    float64 `[size, size, 3]` in [0, 255].
  """
  mapsize = 1 << max(5, (size - 1).bit_length())
  haze = plasma_fractal(rng, 1, mapsize, decay=2.0)[0, :size, :size]
  seeds = (rng.random((1, size, size, 1)) < 0.03) * rng.uniform(
      0.5, 1.0, (1, size, size, 1))
  streaks = [motion_blur_batch(seeds, 7, 4.0, rng.uniform(0, 360, 1))
             for _ in range(4)]
  crystals = np.max(streaks, axis=0)[0, ..., 0]
  crystals = ndimage.gaussian_filter(crystals, 0.5, mode="wrap")
  crystals = np.clip(crystals / np.quantile(crystals, 0.98), 0, 1)
  value = np.clip(0.25 + 0.3 * haze + 0.6 * crystals**0.7 - 0.15, 0, 1)
  tint = np.array([0.85, 0.93, 1.0])
  return value[..., None] * tint * 255


def zoom_matrix(h: int, zoom_factor: float) -> np.ndarray:
  """The linear map of `clipped_zoom` along one axis, as an `[h, h]` matrix.

  The reference crops the central `ch = ceil(h / zoom_factor)` pixels,
  zooms them with `scipy.ndimage.zoom(order=1)` to `round(ch * zoom_factor)`
  samples (grid_mode=False: output `j` reads input coordinate
  `j * (ch - 1) / (size - 1)`, linearly interpolated) and keeps the central
  `h`. Bilinear zoom is separable, so the 2-D zoom is `A @ image @ A.T`.
  """
  ch = int(np.ceil(h / zoom_factor))
  top = (h - ch) // 2
  size = round(ch * zoom_factor)
  trim = (size - h) // 2
  coord = np.arange(size) * ((ch - 1) / (size - 1)) if size > 1 else np.zeros(1)
  lo = np.clip(np.floor(coord).astype(int), 0, ch - 1)
  hi = np.minimum(lo + 1, ch - 1)
  frac = coord - lo
  full = np.zeros((size, h))
  np.add.at(full, (np.arange(size), top + lo), 1 - frac)
  np.add.at(full, (np.arange(size), top + hi), frac)
  return full[trim:trim + h]


def clipped_zoom(x: np.ndarray, zoom_factor: float) -> np.ndarray:
  """Zooms the centre of `[n, h, h, c]` images by `zoom_factor` >= 1."""
  a = zoom_matrix(x.shape[1], zoom_factor).astype(x.dtype)
  planes = np.moveaxis(x, -1, 1)  # [n, c, h, w]
  return np.moveaxis(a @ planes @ a.T, 1, -1)


def affine_source_coords(pts_from: np.ndarray, pts_to: np.ndarray, h: int,
                         w: int) -> tuple[np.ndarray, np.ndarray]:
  """Where OpenCV's `warpAffine(x, getAffineTransform(from, to))` reads.

  Args:
    pts_from: [3, 2] (x, y) points.
    pts_to: [3, 2] points that `pts_from` are moved to.
    h, w: image size.

  Returns:
    (rows, cols), each [h, w]: output pixel (i, j) reads the input at the
    inverse transform of (x=j, y=i), as warpAffine does.
  """
  a = np.concatenate([pts_from, np.ones((3, 1))], axis=1)  # [3, 3]
  m = np.linalg.solve(a, pts_to).T  # [2, 3], maps from -> to
  inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))
  rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
  src_x = inv[0, 0] * cols + inv[0, 1] * rows + inv[0, 2]
  src_y = inv[1, 0] * cols + inv[1, 1] * rows + inv[1, 2]
  return src_y, src_x

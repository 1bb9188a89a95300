"""Full-reference image quality: PSNR and SSIM, per image, on the host.

* `psnr(estimate, reference, data_range)`: `10 log10(range^2 / MSE)` of each
  image `[n, h, w, c]` -> `[n]`.
* `ssim(estimate, reference, data_range)`: the structural similarity of
  Wang et al. 2004 with the defaults of scikit-image's
  `structural_similarity` (7x7 uniform window, K1 = 0.01, K2 = 0.03,
  sample covariances, the mean over windows that lie inside the image,
  channels averaged), so the numbers are comparable with papers that use it.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

ArrayLike = np.ndarray


def _images(x: ArrayLike) -> np.ndarray:
  x = np.asarray(x, np.float64)
  if x.ndim != 4:
    raise ValueError(f"images must be [n, h, w, c], got shape {x.shape}")
  return x


def psnr(estimate: ArrayLike, reference: ArrayLike,
         data_range: float = 1.0) -> np.ndarray:
  """Peak signal-to-noise ratio in dB of each image `[n, h, w, c]` -> `[n]`
  (inf for an exact copy)."""
  est, ref = _images(estimate), _images(reference)
  mse = np.mean((est - ref) ** 2, axis=(1, 2, 3))
  with np.errstate(divide="ignore"):
    return 10.0 * np.log10(data_range ** 2 / mse)


def ssim(estimate: ArrayLike, reference: ArrayLike, data_range: float = 1.0,
         win_size: int = 7) -> np.ndarray:
  """Mean SSIM of each image `[n, h, w, c]` -> `[n]` (scikit-image's
  defaults; images need `h, w >= win_size`)."""
  est, ref = _images(estimate), _images(reference)
  if min(est.shape[1:3]) < win_size or win_size % 2 == 0:
    raise ValueError(f"ssim needs an odd win_size <= the image size; got "
                     f"win_size={win_size}, images {est.shape[1:3]}")
  c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
  n_px = win_size ** 2
  cov_norm = n_px / (n_px - 1.0)      # sample (not population) covariance
  size = (1, win_size, win_size, 1)   # a window over h, w only

  def mean(v):
    return ndimage.uniform_filter(v, size=size, mode="reflect")

  mx, my = mean(est), mean(ref)
  vx = cov_norm * (mean(est * est) - mx * mx)
  vy = cov_norm * (mean(ref * ref) - my * my)
  vxy = cov_norm * (mean(est * ref) - mx * my)
  s = ((2 * mx * my + c1) * (2 * vxy + c2)
       / ((mx * mx + my * my + c1) * (vx + vy + c2)))
  pad = (win_size - 1) // 2           # windows that reach past the border
  return s[:, pad:-pad, pad:-pad, :].mean(axis=(1, 2, 3))

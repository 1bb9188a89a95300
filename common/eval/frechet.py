"""Frechet distance between Gaussians fitted to features (FID's formula).

`d^2 = |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^{1/2})` (Dowson & Landau
1982; Heusel et al. 2017, arXiv:1706.08500), with the matrix square root
from `scipy.linalg.sqrtm` and the same safeguards as the reference
`pytorch-fid` implementation: a small diagonal offset when the product is
singular, and the imaginary part (numerical noise) dropped.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """`(mean [d], covariance [d, d])` of `features [n, d]` (n - 1 norm)."""
  f = np.asarray(features, np.float64)
  return f.mean(0), np.cov(f, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray, eps: float = 1e-6) -> float:
  """The squared Frechet (2-Wasserstein) distance of two Gaussians.

  Args:
    mu1, mu2: means `[d]`.
    sigma1, sigma2: covariances `[d, d]`.
    eps: diagonal offset added when `sigma1 @ sigma2` has no finite square
      root.
  """
  mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
  s1, s2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
  if mu1.shape != mu2.shape or s1.shape != s2.shape:
    raise ValueError(f"mean shapes {mu1.shape}/{mu2.shape} and covariance "
                     f"shapes {s1.shape}/{s2.shape} must agree")
  diff = mu1 - mu2
  covmean = linalg.sqrtm(s1 @ s2)
  if not np.isfinite(covmean).all():
    offset = np.eye(s1.shape[0]) * eps
    covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
  covmean = np.real(covmean)
  return float(diff @ diff + np.trace(s1) + np.trace(s2)
               - 2.0 * np.trace(covmean))


def frechet_distance_of(features1: np.ndarray, features2: np.ndarray
                        ) -> float:
  """Frechet distance of Gaussians fitted to `[n1, d]` and `[n2, d]`."""
  return frechet_distance(*gaussian_stats(features1),
                          *gaussian_stats(features2))

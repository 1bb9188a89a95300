"""PSNR and SSIM against hand-computed cases (and scikit-image if present)."""

from __future__ import annotations

import numpy as np
import pytest

from common.eval import image_quality


def test_psnr_by_hand():
  ref = np.zeros((2, 4, 4, 1))
  est = ref + np.array([0.1, 0.01])[:, None, None, None]   # MSE 1e-2, 1e-4
  np.testing.assert_allclose(image_quality.psnr(est, ref), [20.0, 40.0])
  assert image_quality.psnr(ref, ref)[0] == np.inf


def test_ssim_of_one_window_by_hand():
  # A 7x7 image has exactly one window inside it: the whole image.
  rng = np.random.default_rng(0)
  x, y = rng.uniform(size=(7, 7)), rng.uniform(size=(7, 7))
  mx, my = x.mean(), y.mean()
  vx, vy = x.var(ddof=1), y.var(ddof=1)
  cxy = ((x - mx) * (y - my)).sum() / 48
  c1, c2 = 0.01 ** 2, 0.03 ** 2
  hand = ((2 * mx * my + c1) * (2 * cxy + c2)
          / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2)))
  got = image_quality.ssim(x[None, :, :, None], y[None, :, :, None])
  np.testing.assert_allclose(got, [hand], rtol=1e-10)
  np.testing.assert_allclose(image_quality.ssim(x[None, ..., None],
                                                x[None, ..., None]), [1.0])


def test_ssim_matches_scikit_image():
  metrics = pytest.importorskip("skimage.metrics")
  rng = np.random.default_rng(1)
  x = rng.uniform(size=(20, 24))
  y = np.clip(x + 0.1 * rng.standard_normal(x.shape), 0, 1)
  np.testing.assert_allclose(
      image_quality.ssim(x[None, ..., None], y[None, ..., None]),
      [metrics.structural_similarity(x, y, data_range=1.0)], rtol=1e-6)


def test_bad_shapes_are_refused():
  with pytest.raises(ValueError, match=r"\[n, h, w, c\]"):
    image_quality.psnr(np.zeros((4, 4)), np.zeros((4, 4)))
  with pytest.raises(ValueError, match="win_size"):
    image_quality.ssim(np.zeros((1, 5, 5, 1)), np.zeros((1, 5, 5, 1)))

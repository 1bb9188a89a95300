"""Tests of algos/analysis/dse.py: the diffusion spectrum, DSE, DSMI and the
binned entropy against numpy references; parity with the official
dse_dsmi code (skipped unless REGJAX_OFFICIAL_DSE_DIR points at a checkout
of ChenLiu-1996/DiffusionSpectralEntropy)."""

import os
import random
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from algos.analysis import dse as dse_lib

OFFICIAL = os.environ.get("REGJAX_OFFICIAL_DSE_DIR", "")


def _numpy_dse(z, sigma, t, alpha):
  """DSE from the eigenvalues of the non-symmetric row-stochastic P."""
  d2 = ((z[:, None] - z[None]) ** 2).sum(-1)
  g = np.exp(-d2 / (2 * sigma ** 2))
  q = g.sum(1)
  k = g / np.outer(q, q) ** alpha
  p = k / k.sum(1, keepdims=True)
  a = np.abs(np.linalg.eigvals(p).real) ** t
  prob = a / a.sum() + np.finfo(float).eps
  return -(prob * np.log2(prob)).sum(), p


def _numpy_binned(z, bins):
  x = (z - z.min(0)) / (z.max(0) - z.min(0))
  codes = np.digitize(x, np.linspace(0, 1, bins + 1)[:-1])
  counts = np.unique(codes, axis=0, return_counts=True)[1]
  prob = counts / counts.sum() + np.finfo(float).eps
  return -(prob * np.log2(prob)).sum()


def test_dse_is_the_entropy_of_the_row_stochastic_spectrum_without_retrace():
  z = np.random.default_rng(0).normal(size=(24, 5)).astype(np.float32)
  before = dse_lib.dse._cache_size()
  for sigma, t, alpha in ((1.5, 1.0, 0.0), (2.0, 3.0, 0.5), (1.0, 2.0, 1.0)):
    want, p = _numpy_dse(z.astype(np.float64), sigma, t, alpha)
    got = dse_lib.dse(jnp.asarray(z), sigma, t, alpha)
    np.testing.assert_allclose(float(got), want, rtol=2e-4)
  np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-6)
  np.testing.assert_allclose(
      np.asarray(dse_lib.diffusion_operator(jnp.asarray(z), 2.0, 0.5)),
      _numpy_dse(z.astype(np.float64), 2.0, 1.0, 0.5)[1], atol=1e-5)
  assert dse_lib.dse._cache_size() - before <= 1   # numbers are traced


def test_masked_points_leave_the_graph():
  z = np.random.default_rng(1).normal(size=(24, 5)).astype(np.float32)
  mask = np.arange(24) % 3 != 0
  got = dse_lib.dse(jnp.asarray(z), 2.0, 2.0, 0.0, jnp.asarray(mask))
  want, _ = _numpy_dse(z[mask].astype(np.float64), 2.0, 2.0, 0.0)
  np.testing.assert_allclose(float(got), want, rtol=2e-4)


def test_binned_entropy_matches_numpy_and_saturates_at_log2_n():
  rng = np.random.default_rng(2)
  z = rng.normal(size=(64, 3)).astype(np.float32)
  z[:, 1] = np.round(z[:, 1])          # ties on a bin edge
  np.testing.assert_allclose(float(dse_lib.binned_entropy(jnp.asarray(z), 3)),
                             _numpy_binned(z, 3), rtol=1e-5)
  wide = rng.normal(size=(64, 40)).astype(np.float32)   # every point alone
  np.testing.assert_allclose(float(dse_lib.binned_entropy(jnp.asarray(wide))),
                             6.0, rtol=1e-5)


def test_dsmi_zero_for_own_subsets_and_positive_for_cluster_labels():
  rng = np.random.default_rng(3)
  y = np.repeat(np.arange(3), 12)
  z = (rng.normal(size=(36, 6)) + 6.0 * np.eye(6)[y]).astype(np.float32)
  idx, mask = dse_lib.class_subsets(y, 16)    # dsmi's shapes: one compile
  own = np.repeat(idx[:, None], 2, axis=1)    # references = the classes
  zero = dse_lib.dsmi_from_subsets(jnp.asarray(z), idx, mask, own, 4.0, 1.0)
  np.testing.assert_allclose(float(zero["dsmi"]), 0.0, atol=1e-6)
  key = jax.random.key(0)
  hit = dse_lib.dsmi(jnp.asarray(z), y, key, 4.0, 1.0, repetitions=2)
  shuffled = dse_lib.dsmi(jnp.asarray(z), rng.permutation(y), key, 4.0, 1.0,
                          repetitions=2)
  assert float(hit["dsmi"]) > 0.6 > 0.2 > abs(float(shuffled["dsmi"]))
  with pytest.raises(ValueError, match="one label per point"):
    dse_lib.dsmi(jnp.asarray(z), y[:-1], key)
  with pytest.raises(ValueError, match=r"point cloud \[n, D\]"):
    dse_lib.gaussian_affinity(jnp.zeros(5), 1.0)


@pytest.mark.skipif(not OFFICIAL, reason="set REGJAX_OFFICIAL_DSE_DIR to a "
                    "checkout of ChenLiu-1996/DiffusionSpectralEntropy")
def test_parity_with_the_official_dse_dsmi():
  sys.path.insert(0, OFFICIAL)
  try:
    from dse_dsmi import dse as off_dse  # pylint: disable=g-import-not-at-top
    from dse_dsmi import dsmi as off_dsmi  # pylint: disable=g-import-not-at-top
  finally:
    sys.path.remove(OFFICIAL)
  rng = np.random.default_rng(4)
  z = (3.0 * rng.normal(size=(60, 12))).astype(np.float32)
  y = rng.integers(0, 3, 60)
  zj = jnp.asarray(z)
  for sigma, t in ((10.0, 1), (3.0, 2), (2.0, 5)):
    want = off_dse.diffusion_spectral_entropy(z.astype(np.float64),
                                              gaussian_kernel_sigma=sigma, t=t)
    np.testing.assert_allclose(float(dse_lib.dse(zj, sigma, t)), want,
                               rtol=1e-4)
  for bins in (2, 4):
    want = off_dse.diffusion_spectral_entropy(
        z.astype(np.float64), classic_shannon_entropy=True,
        num_bins_per_dim=bins)
    np.testing.assert_allclose(float(dse_lib.binned_entropy(zj, bins)), want,
                               rtol=1e-5)
  # DSMI with the official reference subsets (random.seed(0) per class).
  want, _ = off_dsmi.diffusion_spectral_mutual_information(
      z.astype(np.float64), y.astype(np.int64), gaussian_kernel_sigma=3.0,
      t=2)
  idx, mask = dse_lib.class_subsets(y)
  ref = np.zeros((idx.shape[0], 5, idx.shape[1]), np.int32)
  for i, c in enumerate(np.unique(y)):
    random.seed(0)
    for r in range(5):
      s = random.sample(range(len(y)), k=int((y == c).sum()))
      ref[i, r, :len(s)] = s
  got = dse_lib.dsmi_from_subsets(zj, idx, mask, ref, 3.0, 2.0)
  np.testing.assert_allclose(float(got["dsmi"]), want, atol=2e-4)

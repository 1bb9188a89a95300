"""RePRI's pieces: resampling as PyTorch's, traced numbers, the variants."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from algos.segmentation import repri

torch = pytest.importorskip("torch")


def test_resampling_matches_torch_interpolate():
  rng = np.random.default_rng(0)
  mask = rng.integers(0, 3, (2, 41, 37)).astype(np.float32)
  ref = torch.nn.functional.interpolate(torch.tensor(mask)[None], size=(6, 5),
                                        mode="nearest")[0].numpy()
  np.testing.assert_array_equal(repri.downsample_nearest(mask, (6, 5)), ref)
  x = rng.normal(size=(2, 6, 5)).astype(np.float32)
  ref = torch.nn.functional.interpolate(
      torch.tensor(x)[None], size=(41, 37), mode="bilinear",
      align_corners=True)[0].numpy()
  np.testing.assert_allclose(repri.upsample_bilinear(x, (41, 37)), ref,
                             atol=1e-5)


def _episodes(n=4, shot=2, size=16, h=8, c=8, seed=0):
  """Features that are a noisy class code: fg direction vs bg direction."""
  rng = np.random.default_rng(seed)
  masks = np.zeros((n, shot + 1, size, size), np.int32)
  for e in range(n):
    for i in range(shot + 1):
      r, k, s = rng.integers(0, 8), rng.integers(0, 8), rng.integers(4, 9)
      masks[e, i, r:r + s, k:k + s] = 1
  ds = np.asarray(repri.downsample_nearest(masks, (h, h)))
  code = rng.normal(size=(2, c))
  feats = code[ds] + 0.8 * rng.normal(size=ds.shape + (c,))
  feats = repri.normalize_features(jnp.asarray(feats, jnp.float32))
  return feats[:, :shot], masks[:, :shot], feats[:, shot], masks[:, shot]


def test_variants_segment_separable_features_and_hparams_are_traced():
  fs, ms, fq, mq = _episodes()
  size = mq.shape[-2:]
  valid = jnp.ones(mq.shape, bool)
  pi = jnp.stack([repri.oracle_proportion(m, fs.shape[2:4]) for m in mq])
  iou = lambda logits: float(np.mean(
      (np.asarray(repri.predict(logits)) & (mq == 1)).sum((1, 2))
      / np.maximum((np.asarray(repri.predict(logits)) | (mq == 1)).sum(
          (1, 2)), 1)))
  proto = repri.prototype_batch(fs, jnp.asarray(ms), fq, 20.0,
                                image_size=size)
  cfg = repri.RePRIConfig(n_iter=20)
  run = jax.jit(chex.assert_max_traces(
      lambda hp: repri.repri_batch(fs, jnp.asarray(ms), fq, valid, pi, hp,
                                   **cfg.static(), image_size=size), n=1))
  out = run(cfg.hparams())
  run(cfg._replace(lr=0.05, kl_weight=0.5, t_pi=5).hparams())  # no retrace
  oracle = repri.oracle_config()._replace(n_iter=20)
  out_o = repri.repri_batch(fs, jnp.asarray(ms), fq, valid, pi,
                            oracle.hparams(), **oracle.static(),
                            image_size=size)
  assert iou(proto) > 0.6 and iou(out.logits) > 0.6
  np.testing.assert_allclose(out_o.pi, pi, atol=1e-6)
  assert not np.allclose(out.pi, out.pi_init)   # refreshed at t_pi

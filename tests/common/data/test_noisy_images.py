"""The `noisy_patches` generator: fixed noise realisations of the right law."""

from __future__ import annotations

import jax
import ml_collections as mlc
import numpy as np
import pytest

from common import config as config_lib
from common.data import noisy_images
from common.data import procedural


def _gen(**kwargs):
  c = mlc.ConfigDict(dict(data=dict(name="noisy_patches", data_dir="")))
  c.data.kwargs = mlc.ConfigDict(kwargs)
  return procedural.make(c)


def test_noise_laws():
  rng = np.random.default_rng(0)
  clean = np.full(200000, 0.4)
  g = noisy_images.add_noise(clean, "gaussian", 25.0, rng)
  np.testing.assert_allclose((g - clean).std(), 25 / 255, rtol=0.01)
  p = noisy_images.add_noise(clean, "poisson", 0.01, rng)
  np.testing.assert_allclose([p.mean(), p.var()], [0.4, 0.4 * 0.01],
                             rtol=0.02)
  m = noisy_images.add_noise(clean, "gamma", 100.0, rng)
  np.testing.assert_allclose([m.mean(), m.var()], [0.4, 0.16 / 100],
                             rtol=0.02)


def test_patches_are_aligned_fixed_and_the_eval_split_differs():
  gen = _gen(noise="gaussian", level=25.0, patch=8)
  a = gen.sample(jax.random.PRNGKey(0), 8)
  assert a["noisy"].shape == a["clean"].shape == (8, 8, 8, 1)
  # Half digits (drawn from a fixed noisy bank), half photo crops.
  b = gen.sample(jax.random.PRNGKey(0), 8)
  np.testing.assert_array_equal(a["noisy"], b["noisy"])
  resid = np.asarray(a["noisy"] - a["clean"])
  assert 0.07 < resid.std() < 0.13
  # The same digit drawn twice carries the same noise (one realisation).
  many = gen.sample(jax.random.PRNGKey(1), 600)    # 300 of 1500 digits
  clean = np.asarray(many["clean"][300:]).reshape(300, -1)
  _, first = np.unique(clean, axis=0, return_index=True)
  dup = [i for i in range(300) if i not in set(first)][0]
  twin = np.where((clean == clean[dup]).all(1))[0][0]
  np.testing.assert_array_equal(many["noisy"][300 + dup],
                                many["noisy"][300 + twin])
  held = gen.eval_sample(jax.random.PRNGKey(0), 8)
  assert not np.allclose(held["clean"], a["clean"])


def test_bad_settings_are_refused():
  with pytest.raises(config_lib.ConfigError, match="noise"):
    _gen(noise="laplace")
  with pytest.raises(config_lib.ConfigError, match="images"):
    _gen(images="imagenet")
  with pytest.raises(FileNotFoundError, match="no images"):
    c = mlc.ConfigDict(dict(data=dict(name="noisy_patches",
                                      data_dir="/nonexistent")))
    c.data.kwargs = mlc.ConfigDict(dict(images="folder", train_dir="t"))
    procedural.make(c).sample(jax.random.PRNGKey(0), 2)

"""Tests of the jittable on-device augmentation."""

import functools
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
from jax.sharding import AxisType
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec
import numpy as np
import pytest

from common.data import augment as aug


def _images(b=16, h=6, w=5, c=3, seed=0) -> np.ndarray:
  return np.random.default_rng(seed).integers(
      0, 256, (b, h, w, c), dtype=np.uint8)


def _numpy_crop(image, padding, row, col, mode="constant"):
  padded = np.pad(image, ((padding, padding), (padding, padding), (0, 0)),
                  mode=mode)
  h, w, _ = image.shape
  return padded[row:row + h, col:col + w]


def test_identity_without_crop_or_flip():
  images = _images()
  out = aug.augment(jax.random.key(0), images, crop_padding=0, flip=False)
  np.testing.assert_array_equal(out, images)


@pytest.mark.parametrize("mode", ["constant", "reflect"])
def test_crop_at_matches_numpy(mode):
  images = _images(b=4)
  offsets = np.array([[0, 0], [4, 4], [1, 3], [2, 0]])
  out = np.asarray(aug.crop_at(jnp.asarray(images), jnp.asarray(offsets), 2,
                               pad_mode=mode))
  assert out.dtype == np.uint8 and out.shape == images.shape
  for image, (row, col), got in zip(images, offsets, out):
    np.testing.assert_array_equal(got, _numpy_crop(image, 2, row, col, mode))


def test_random_crop_is_a_crop_of_the_padded_image():
  padding = 2
  images = _images(b=32)
  out = np.asarray(aug.random_crop(jax.random.key(1), images, padding))
  found = []
  for image, got in zip(images, out):
    matches = [(r, c) for r in range(2 * padding + 1)
               for c in range(2 * padding + 1)
               if np.array_equal(got, _numpy_crop(image, padding, r, c))]
    assert matches, "output is not a crop of the padded input"
    found.append(matches[0])
  assert len(set(found)) > 5  # Offsets are drawn per example.


def test_flip():
  images = _images(b=64)
  rng = jax.random.key(2)
  once = np.asarray(aug.random_flip_left_right(rng, images))
  twice = aug.random_flip_left_right(rng, once)
  np.testing.assert_array_equal(twice, images)
  flipped = np.array([np.array_equal(o, i[:, ::-1]) and
                      not np.array_equal(o, i)
                      for o, i in zip(once, images)])
  kept = np.array([np.array_equal(o, i) for o, i in zip(once, images)])
  assert np.all(flipped | kept)
  assert 16 < flipped.sum() < 48


def test_augment_is_deterministic_and_jittable():
  images = jnp.asarray(_images(b=8, h=8, w=8))
  fn = functools.partial(aug.augment, crop_padding=4, flip=True)
  a = fn(jax.random.key(3), images)
  np.testing.assert_array_equal(jax.jit(fn)(jax.random.key(3), images), a)
  assert a.dtype == jnp.uint8 and a.shape == images.shape
  assert not np.array_equal(fn(jax.random.key(4), images), a)


def test_normalize():
  images = _images(b=2)
  mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
  out = aug.normalize(jnp.asarray(images), mean, std)
  assert out.dtype == jnp.float32
  expected = (images / 255.0 - np.array(mean)) / np.array(std)
  np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def _sharded_vs_plain(num_devices: int) -> bool:
  """Augments a batch sharded over an explicit mesh and a plain one."""
  mesh = jax.make_mesh((num_devices,), ("data",),
                       axis_types=(AxisType.Explicit,),
                       devices=jax.devices()[:num_devices])
  images = _images(b=8)
  sharded = jax.device_put(images, NamedSharding(mesh, PartitionSpec("data")))
  # `augment` is itself jitted, as it would be inside a train step.
  fn = functools.partial(aug.augment, crop_padding=2, flip=True)
  plain = np.asarray(fn(jax.random.key(5), images))
  return np.array_equal(np.asarray(fn(jax.random.key(5), sharded)), plain)


def test_same_result_on_sharded_batches():
  # jax.make_mesh's explicit sharding once broke vmap over mixed shardings.
  # A fresh process, because the CPU device count is fixed when jax starts.
  code = ("import sys; sys.path[:0] = sys.argv[1:]; "
          "import test_data_augment as t; "
          "assert t._sharded_vs_plain(1) and t._sharded_vs_plain(2)")
  env = dict(os.environ,
             XLA_FLAGS="--xla_force_host_platform_device_count=2",
             JAX_PLATFORMS="cpu")
  here = os.path.dirname(os.path.abspath(__file__))
  root = os.path.abspath(os.path.join(here, "..", "..", ".."))
  result = subprocess.run([sys.executable, "-c", code, here, root], env=env,
                          capture_output=True, text=True, timeout=120,
                          check=False)
  assert result.returncode == 0, result.stderr[-2000:]

"""Tests of the CIFAR-10-C corruptions (`common.data.corruptions`)."""

import numpy as np
import pytest
from scipy import ndimage

from common.data import corruption_textures as textures
from common.data import corruptions
from common.data import digits_corrupted

NAMES = corruptions.BENCHMARK_CORRUPTIONS
# Mean |corrupted - clean| must grow with severity wherever the severity
# parameter only strengthens one effect. Not asserted for: frosted_glass_blur
# (severity 3 blurs more than 4, which shuffles twice), motion_blur (the
# severity 3 -> 4 kernels differ only in taps of weight < 1e-2), snow, frost
# (severities 4-5 darken the image as they add frost), elastic (the CIFAR
# parameters shrink the affine warp as severity grows).
MONOTONE = ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur",
            "zoom_blur", "fog", "brightness", "contrast", "pixelate",
            "jpeg_compression")
RANDOM = ("gaussian_noise", "shot_noise", "impulse_noise",
          "frosted_glass_blur", "motion_blur", "snow", "frost", "fog",
          "elastic")


@pytest.fixture(scope="module")
def clean():
  images, _ = digits_corrupted.clean_images("test")
  return images[:24]


def _mad(a, b):
  return np.abs(a.astype(np.float64) - b.astype(np.float64)).mean()


@pytest.mark.parametrize("name", NAMES)
def test_shape_dtype_and_every_image_changes(clean, name):
  # On digits no corruption is the identity at any severity (each image
  # has black background and white strokes, so even brightness/contrast
  # at severity 1 move pixels).
  for severity in corruptions.SEVERITIES:
    out = corruptions.corrupt(clean, name, severity, seed=1)
    assert out.dtype == np.uint8 and out.shape == clean.shape
    per_image = np.abs(out.astype(int) - clean).reshape(len(clean), -1)
    assert np.all(per_image.max(axis=1) > 0), (name, severity)


@pytest.mark.parametrize("name", MONOTONE)
def test_severity_is_monotone(clean, name):
  mads = [_mad(corruptions.corrupt(clean, name, s, seed=0), clean)
          for s in corruptions.SEVERITIES]
  assert all(a < b for a, b in zip(mads, mads[1:])), mads


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_given_seed(clean, name):
  a = corruptions.corrupt(clean[:4], name, 5, seed=3)
  b = corruptions.corrupt(clean[:4], name, 5, seed=3)
  np.testing.assert_array_equal(a, b)
  c = corruptions.corrupt(clean[:4], name, 5, seed=4)
  assert (not np.array_equal(a, c)) == (name in RANDOM)


def test_names_match_tfds_cifar10_corrupted():
  # pylint: disable-next=g-import-not-at-top
  from tensorflow_datasets.image_classification import cifar10_corrupted
  assert tuple(cifar10_corrupted.BENCHMARK_CORRUPTIONS) == NAMES
  assert set(corruptions.CORRUPTIONS) == set(NAMES)
  tfds_configs = {c.name for c in
                  cifar10_corrupted.Cifar10Corrupted.BUILDER_CONFIGS
                  if c.name.rpartition("_")[0] in NAMES}
  assert len(tfds_configs) == 75
  ours = set(digits_corrupted.CONFIG_NAMES)
  assert tfds_configs <= ours
  aliases = {f"{a}_{s}" for a in ("glass_blur", "elastic_transform")
             for s in range(1, 6)}
  assert ours == tfds_configs | aliases | {"clean"}


def test_aliases_are_the_same_corruption(clean):
  for alias, name in corruptions.ALIASES.items():
    np.testing.assert_array_equal(
        corruptions.corrupt(clean[:2], alias, 2, seed=0),
        corruptions.corrupt(clean[:2], name, 2, seed=0))
    assert (digits_corrupted.config_seed(f"{alias}_2")
            == digits_corrupted.config_seed(f"{name}_2"))


def test_bad_input_is_a_clear_error(clean):
  with pytest.raises(ValueError, match="Unknown corruption 'speckle'"):
    corruptions.corrupt(clean, "speckle", 1, seed=0)
  with pytest.raises(ValueError, match="severity must be one of"):
    corruptions.corrupt(clean, "fog", 6, seed=0)
  with pytest.raises(ValueError, match=r"uint8 \[n, 32, 32, 3\]"):
    corruptions.corrupt(clean.astype(np.float32), "fog", 1, seed=0)
  with pytest.raises(ValueError, match=r"uint8 \[n, 32, 32, 3\]"):
    corruptions.corrupt(clean[:, :16], "fog", 1, seed=0)


@pytest.mark.parametrize("factor", [1.0, 1.01, 1.07, 1.25, 1.75, 2.25])
def test_clipped_zoom_matches_scipy_zoom(factor):
  x = np.random.default_rng(0).random((2, 32, 32, 3))
  ch = int(np.ceil(32 / factor))
  top = (32 - ch) // 2
  ref = ndimage.zoom(x[:, top:top + ch, top:top + ch], (1, factor, factor, 1),
                     order=1)
  trim = (ref.shape[1] - 32) // 2
  np.testing.assert_allclose(textures.clipped_zoom(x, factor),
                             ref[:, trim:trim + 32, trim:trim + 32],
                             atol=1e-12)


def test_motion_blur_is_a_one_sided_gaussian_streak():
  x = np.zeros((2, 15, 15, 1))
  x[:, 7, 7] = 1.0
  out = textures.motion_blur_batch(x, radius=3, sigma=1.5,
                                   angles_deg=np.array([0.0, 90.0]))
  taps = np.exp(-np.arange(7)**2 / (2 * 1.5**2))
  taps /= taps.sum()
  # Angle 0: out[r, c] reads x[r, c + i], so the dot streaks to the left.
  np.testing.assert_allclose(out[0, 7, 1:8, 0], taps[::-1], atol=1e-12)
  # Angle 90: reads x[r + i, c], so the dot streaks upwards.
  np.testing.assert_allclose(out[1, 1:8, 7, 0], taps[::-1], atol=1e-12)
  np.testing.assert_allclose(out.sum(axis=(1, 2, 3)), 1.0)


def test_disk_kernel_and_plasma_fractal():
  for radius, blur in [(0.3, 0.4), (1, 0.2), (1.5, 0.1)]:
    k = textures.disk_kernel(radius, blur)
    assert k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1
    np.testing.assert_allclose(k.sum(), 1.0)
    np.testing.assert_allclose(k, k.T)
  # Radius < 1 is a 3x3 Gaussian with OpenCV's taps.
  g = np.exp(-np.array([1.0, 0.0, 1.0]) / (2 * 0.4**2))
  g /= g.sum()
  np.testing.assert_allclose(textures.disk_kernel(0.3, 0.4), np.outer(g, g))
  maps = textures.plasma_fractal(np.random.default_rng(0), 3, 32, 2.0)
  assert maps.shape == (3, 32, 32)
  np.testing.assert_allclose(maps.min(axis=(1, 2)), 0.0)
  np.testing.assert_allclose(maps.max(axis=(1, 2)), 1.0)
  with pytest.raises(ValueError, match="power of two"):
    textures.plasma_fractal(np.random.default_rng(0), 1, 24)


def test_frost_texture_statistics():
  tex = textures.frost_texture(np.random.default_rng(0), size=96)
  assert tex.shape == (96, 96, 3)
  assert 0 <= tex.min() and tex.max() <= 255
  assert 0.35 < tex.mean() / 255 < 0.6
  # Bluish: blue >= green >= red everywhere.
  assert np.all(tex[..., 2] >= tex[..., 1])
  assert np.all(tex[..., 1] >= tex[..., 0])


def test_brightness_keeps_hue_and_saturation():
  rgb = np.array([[[[200, 100, 50]]]], np.uint8).repeat(32, 1).repeat(32, 2)
  out = corruptions.brightness(rgb, 1, np.random.default_rng(0)) / 255
  v = 200 / 255 + 0.05
  np.testing.assert_allclose(out[0, 0, 0], np.array([200, 100, 50]) / 200 * v)
  black = np.zeros((1, 32, 32, 3), np.uint8)
  np.testing.assert_allclose(
      corruptions.brightness(black, 5, np.random.default_rng(0)), 0.3 * 255)

"""Tests of the in-repo `digits_corrupted` TFDS builder."""

import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from common.data import corruptions
from common.data import digits
from common.data import digits_corrupted
from common.data import sources


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("tfds_dc"))


def test_clean_config_has_train_and_test(data_dir):
  train = sources.open_split("digits_corrupted/clean", "train", data_dir)
  test = sources.open_split("digits_corrupted/clean", "test", data_dir)
  assert (len(train), len(test)) == (1437, 360)
  assert train.image_shape == (32, 32, 3) and train.num_classes == 10
  builder = tfds.builder("digits_corrupted/clean", data_dir=data_dir)
  assert set(builder.info.features) == {"image", "label", "index"}
  assert builder.info.file_format.value == "array_record"
  images, labels = digits_corrupted.clean_images("test")
  batch = test.get(np.arange(360))
  np.testing.assert_array_equal(batch["image"], images)
  np.testing.assert_array_equal(batch["label"], labels)
  # Same examples, same order as the `digits` dataset.
  small = sources.open_split("digits", "test", data_dir)
  np.testing.assert_array_equal(small.get(np.arange(360))["label"], labels)


def test_corrupted_config_is_the_corrupted_test_split(data_dir):
  source = sources.open_split("digits_corrupted/gaussian_noise_5", "test",
                              data_dir)
  assert len(source) == 360 and source.image_shape == (32, 32, 3)
  clean, labels = digits_corrupted.clean_images("test")
  expected = corruptions.corrupt(
      clean, "gaussian_noise", 5,
      seed=digits_corrupted.config_seed("gaussian_noise_5"))
  batch = source.get(np.arange(360))
  np.testing.assert_array_equal(batch["image"], expected)
  np.testing.assert_array_equal(batch["label"], labels)
  with pytest.raises(ValueError, match="Unknown split 'train'.*'test'"):
    sources.open_split("digits_corrupted/gaussian_noise_5", "train", data_dir)
  # Built lazily: only the configs asked for exist on disk.
  built = sorted(f for f in os.listdir(os.path.join(data_dir,
                                                   "digits_corrupted"))
                 if not f.startswith("."))
  assert built == ["clean", "gaussian_noise_5"]


def test_config_names_and_seeds():
  assert len(digits_corrupted.CONFIG_NAMES) == 1 + 17 * 5
  seeds = {digits_corrupted.config_seed(n)
           for n in digits_corrupted.CONFIG_NAMES
           if n.rpartition("_")[0] not in corruptions.ALIASES}
  assert len(seeds) == 76  # every canonical config has its own noise


def test_upsample():
  ramp = np.tile(np.arange(8, dtype=np.uint8) * 30, (1, 8, 1))  # [1, 8, 8]
  out = digits_corrupted.upsample(ramp)
  assert out.shape == (1, 32, 32, 3) and out.dtype == np.uint8
  assert np.all(out[..., 0] == out[..., 2])
  # Half-pixel centres: input column j sits at output 4j + 1.5, so outputs
  # 4j + 1 and 4j + 2 are 30j -+ 3.75 (rounded).
  row = out[0, 0, :, 0].astype(int)
  np.testing.assert_array_equal(row[5:29:4], 30 * np.arange(1, 7) - 4)
  np.testing.assert_array_equal(row[6:30:4], 30 * np.arange(1, 7) + 4)
  np.testing.assert_array_equal(row[[0, 1, 30, 31]], [0, 0, 210, 210])
  const = np.full((2, 8, 8), 77, np.uint8)
  assert np.all(digits_corrupted.upsample(const) == 77)
  assert digits.to_uint8(np.array([16]))[0] == 255

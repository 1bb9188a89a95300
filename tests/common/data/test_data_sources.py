"""Tests of `open_split`, `ArraySource` and the host-side image ops."""

import os

import numpy as np
import pytest
from sklearn import datasets as sk_datasets

from common.data import digits
from common.data import image_ops
from common.data import sources


def test_missing_dataset_says_what_where_and_how(tmp_path):
  with pytest.raises(sources.DatasetNotFoundError) as info:
    sources.open_split("cifar10", "train", str(tmp_path))
  message = str(info.value)
  assert isinstance(info.value, FileNotFoundError)
  assert "'cifar10'" in message and "'train'" in message
  assert str(tmp_path) in message
  assert os.path.join(str(tmp_path), "cifar10", "3.0.2") in message
  assert "tfds build cifar10" in message
  assert "--file_format=array_record" in message
  assert "--config.data.data_dir" in message
  assert os.listdir(tmp_path) == []  # Looking must not create anything.


def test_missing_config_and_manual_dataset(tmp_path):
  with pytest.raises(sources.DatasetNotFoundError, match="gaussian_noise_5"):
    sources.open_split("cifar10_corrupted/gaussian_noise_5", "test",
                       str(tmp_path))
  with pytest.raises(sources.DatasetNotFoundError) as info:
    sources.open_split("imagenet2012", "validation", str(tmp_path))
  assert "downloads/manual/" in str(info.value)
  assert "ILSVRC2012_img_train.tar" in str(info.value)


def test_unknown_name(tmp_path):
  with pytest.raises(sources.DatasetNotFoundError, match="no_such_dataset"):
    sources.open_split("no_such_dataset", "train", str(tmp_path))


def test_unknown_split_lists_available(digits_dir):
  with pytest.raises(ValueError, match=r"'validation'.*\['test', 'train'\]"):
    sources.open_split("digits", "validation", digits_dir)
  with pytest.raises(ValueError, match="'val'"):
    sources.open_split("digits", "train[:10]+val", digits_dir)


def test_default_data_dir(monkeypatch, tmp_path):
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
  assert sources.default_data_dir() == str(tmp_path)
  monkeypatch.delenv("TFDS_DATA_DIR")
  assert sources.default_data_dir() == os.path.expanduser(
      "~/tensorflow_datasets")


def test_materialized_source(digits_dir):
  source = sources.open_split("digits", "train", digits_dir)
  assert source.materialized
  assert len(source) == 1437
  assert source.num_classes == 10
  assert source.image_shape == (8, 8, 1)
  assert source.info == sources.DatasetInfo(
      name="digits", splits={"train": 1437, "test": 360}, num_classes=10,
      image_shape=(8, 8, 1))
  assert set(source.features) == {"image", "label", "index"}
  batch = source.get(np.array([5, 0, 5]))
  assert set(batch) == {"image", "label"}
  assert batch["image"].dtype == np.uint8
  assert batch["image"].shape == (3, 8, 8, 1)
  assert batch["label"].dtype == np.int32
  np.testing.assert_array_equal(batch["image"][0], batch["image"][2])


def test_streamed_source_matches_materialized(digits_dir):
  fast = sources.open_split("digits", "test", digits_dir)
  slow = sources.open_split("digits", "test", digits_dir,
                            materialize_max_bytes=0)
  assert fast.materialized and not slow.materialized
  assert len(slow) == 360 and slow.image_shape == (8, 8, 1)
  indices = np.array([359, 0, 17, 17, 200])
  a, b = fast.get(indices), slow.get(indices)
  assert set(b) == {"image", "label"}
  np.testing.assert_array_equal(a["image"], b["image"])
  np.testing.assert_array_equal(a["label"], b["label"])
  assert b["label"].dtype == np.int32 and b["image"].dtype == np.uint8
  empty = slow.get(np.zeros((0,), np.int64))
  assert empty["image"].shape == (0, 8, 8, 1)


def test_source_matches_sklearn_order(digits_dir):
  sk = sk_datasets.load_digits()
  source = sources.open_split("digits", "test", digits_dir)
  sk_index = digits.split_indices()["test"]
  batch = source.get(np.arange(len(source)))
  np.testing.assert_array_equal(batch["label"], sk.target[sk_index])
  np.testing.assert_array_equal(batch["image"][..., 0],
                                digits.to_uint8(sk.images[sk_index]))


def test_open_with_image_size(digits_dir):
  for budget in [0, sources.DEFAULT_MATERIALIZE_MAX_BYTES]:
    source = sources.open_split("digits", "test", digits_dir, image_size=6,
                                materialize_max_bytes=budget)
    assert source.image_shape == (6, 6, 1)
    assert source.get(np.arange(4))["image"].shape == (4, 6, 6, 1)


def test_resize_shorter_then_center_crop():
  rng = np.random.default_rng(0)
  tall = rng.integers(0, 256, (40, 20, 3), dtype=np.uint8)
  out = image_ops.resize_shorter_then_center_crop(tall, 10)
  assert out.shape == (10, 10, 3) and out.dtype == np.uint8
  # Constant images stay constant; a square at the target size is untouched.
  flat = np.full((30, 45, 1), 77, np.uint8)
  np.testing.assert_array_equal(
      image_ops.resize_shorter_then_center_crop(flat, 16),
      np.full((16, 16, 1), 77))
  same = tall[:20]
  assert image_ops.resize_shorter_then_center_crop(same, 20) is same
  # The crop is centred: a wide image keeps its middle columns.
  wide = np.zeros((10, 30, 1), np.uint8)
  wide[:, 10:20] = 255
  np.testing.assert_array_equal(
      image_ops.resize_shorter_then_center_crop(wide, 10),
      np.full((10, 10, 1), 255))

"""Tests of the in-repo `digits` TFDS builder and its preparation."""

import os
import threading

import numpy as np
import pytest
from sklearn import datasets as sk_datasets
import tensorflow_datasets as tfds

from common.data import digits
from common.data import sources


@pytest.fixture(scope="module")
def sklearn_digits():
  return sk_datasets.load_digits()


def _read_all(data_dir: str, split: str) -> dict[str, np.ndarray]:
  source = tfds.builder("digits", data_dir=data_dir).as_data_source(split)
  records = source.__getitems__(list(range(len(source))))
  return {k: np.stack([r[k] for r in records]) for k in records[0]}


def test_split_sizes_and_format(digits_dir):
  builder = tfds.builder("digits", data_dir=digits_dir)
  assert isinstance(builder, digits.Builder)
  assert str(builder.version) == "1.0.0"
  assert builder.info.splits["train"].num_examples == 1437
  assert builder.info.splits["test"].num_examples == 360
  assert builder.info.file_format.value == "array_record"
  files = os.listdir(builder.data_dir)
  assert any(".array_record-" in f and "-train" in f for f in files), files
  assert "Optical Recognition" in builder.info.citation


def test_splits_partition_sklearn_and_are_sorted():
  idx = digits.split_indices()
  assert len(idx["train"]) == 1437 and len(idx["test"]) == 360
  assert np.all(np.diff(idx["train"]) > 0) and np.all(np.diff(idx["test"]) > 0)
  both = np.concatenate([idx["train"], idx["test"]])
  np.testing.assert_array_equal(np.sort(both), np.arange(1797))


@pytest.mark.parametrize("split", ["train", "test"])
def test_records_match_sklearn(digits_dir, sklearn_digits, split):
  data = _read_all(digits_dir, split)
  sk_index = digits.split_indices()[split]
  n = len(sk_index)
  # The stored index is the record position, 0..n-1 in order.
  np.testing.assert_array_equal(data["index"], np.arange(n))
  assert data["image"].dtype == np.uint8
  assert data["image"].shape == (n, 8, 8, 1)
  assert data["image"].min() == 0 and data["image"].max() == 255
  np.testing.assert_array_equal(data["label"], sklearn_digits.target[sk_index])
  # Back to sklearn's 0..16 counts, up to the rounding of the uint8 mapping.
  for pos in [0, 1, n // 2, n - 1]:
    original = sklearn_digits.images[sk_index[pos]]
    restored = data["image"][pos, ..., 0].astype(np.float64) * 16 / 255
    np.testing.assert_allclose(restored, original, atol=0.5 * 16 / 255)
  # Stratified: every class has its share of the split, +-2 examples.
  counts = np.bincount(data["label"], minlength=10)
  expected = np.bincount(sklearn_digits.target) * n / 1797
  assert np.all(np.abs(counts - expected) <= 2), counts


def test_uint8_mapping_rounds_half_up():
  np.testing.assert_array_equal(
      digits.to_uint8(np.arange(17.0)),
      [round(v * 255 / 16 + 1e-9) for v in range(17)])
  assert digits.to_uint8(np.array([8.0]))[0] == 128


def test_second_open_reuses_the_build(digits_dir):
  version_dir = os.path.join(digits_dir, "digits", "1.0.0")
  mtimes = {f: os.path.getmtime(os.path.join(version_dir, f))
            for f in os.listdir(version_dir)}
  first = sources.open_split("digits", "test", digits_dir)
  assert not sources.prepare_in_repo("digits", digits_dir)
  second = sources.open_split("digits", "test", digits_dir)
  np.testing.assert_array_equal(first.get(np.arange(360))["image"],
                                second.get(np.arange(360))["image"])
  assert mtimes == {f: os.path.getmtime(os.path.join(version_dir, f))
                    for f in os.listdir(version_dir)}


def test_concurrent_prepare_builds_once(tmp_path):
  results = []
  errors = []

  def prepare():
    try:
      results.append(sources.prepare_in_repo("digits", str(tmp_path)))
    except Exception as e:  # pylint: disable=broad-exception-caught
      errors.append(e)

  threads = [threading.Thread(target=prepare) for _ in range(2)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  assert not errors, errors
  assert sorted(results) == [False, True]
  source = sources.open_split("digits", "train", str(tmp_path))
  assert len(source) == 1437

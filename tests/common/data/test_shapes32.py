"""Tests of the procedural `shapes32` / `shapes32_corrupted` datasets."""

import os

import numpy as np
import pytest

from common.data import corruptions
from common.data import shapes32
from common.data import shapes32_corrupted
from common.data import sources
from common.data.shapes32 import render


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("tfds_shapes32"))


@pytest.mark.parametrize("num_classes", [10, 100])
def test_render_is_deterministic_balanced_uint8(num_classes):
  images, labels = render.render_split(7, render.CHUNK, num_classes, 0.5)
  assert images.shape == (render.CHUNK, 32, 32, 3)
  assert images.dtype == np.uint8 and labels.dtype == np.int64
  np.testing.assert_array_equal(
      np.bincount(labels, minlength=num_classes),
      np.full(num_classes, render.CHUNK // num_classes))
  again, labels_again = render.render_split(7, render.CHUNK, num_classes, 0.5)
  np.testing.assert_array_equal(images, again)
  np.testing.assert_array_equal(labels, labels_again)
  other, _ = render.render_split(8, render.CHUNK, num_classes, 0.5)
  assert np.mean(images != other) > 0.5
  # Not degenerate: every image has structure, channels differ.
  assert images.reshape(len(images), -1).std(axis=1).min() > 5
  assert np.abs(images[..., 0].astype(int) - images[..., 1]).mean() > 5


def test_chunks_are_independent_and_mini_is_the_head_of_c10():
  two, labels = render.render_split(3, 2 * render.CHUNK, 10, 0.5)
  second, second_labels = render.render_split(3, render.CHUNK, 10, 0.5,
                                              first_chunk=1)
  np.testing.assert_array_equal(two[render.CHUNK:], second)
  np.testing.assert_array_equal(labels[render.CHUNK:], second_labels)
  head, head_labels = shapes32.images("c10", "test", 10)
  mini, mini_labels = shapes32.images("mini", "test")
  np.testing.assert_array_equal(mini[:10], head)
  np.testing.assert_array_equal(mini_labels[:10], head_labels)
  train, _ = shapes32.images("mini", "train", 10)
  assert np.mean(train != head) > 0.5  # train and test seeds differ


def test_difficulty_knob_and_bad_input():
  easy, _ = render.render_split(0, render.CHUNK, 10, 0.0)
  hard, _ = render.render_split(0, render.CHUNK, 10, 1.0)
  # More noise and clutter: larger pixel-to-pixel differences.
  grad = lambda x: np.abs(np.diff(x.astype(float), axis=2)).mean()
  assert grad(hard) > grad(easy)
  with pytest.raises(ValueError, match="difficulty must be in"):
    render.render(np.random.default_rng(0), np.zeros(2, int), 10, 1.5)
  with pytest.raises(ValueError, match="num_classes must be 10 or 100"):
    render.render(np.random.default_rng(0), np.zeros(2, int), 20, 0.5)
  with pytest.raises(ValueError, match="configs"):
    shapes32.images("c20", "train")


def test_mini_config_builds_and_reads_back(data_dir):
  train = sources.open_split("shapes32/mini", "train", data_dir)
  test = sources.open_split("shapes32/mini", "test", data_dir)
  assert (len(train), len(test)) == (1000, 1000)
  assert train.image_shape == (32, 32, 3) and train.num_classes == 10
  expected, labels = shapes32.images("mini", "train")
  batch = train.get(np.arange(1000))
  np.testing.assert_array_equal(batch["image"], expected)
  np.testing.assert_array_equal(batch["label"], labels)


def test_corrupted_config_is_the_corrupted_c10_test_head(data_dir):
  name = "shapes32_corrupted/contrast_5"
  source = sources.open_split(name, "test", data_dir)
  assert len(source) == shapes32_corrupted.TEST_SIZE == 2000
  clean, labels = shapes32.images("c10", "test", 2000)
  expected = corruptions.corrupt(
      clean, "contrast", 5, seed=shapes32_corrupted.config_seed("contrast_5"))
  batch = source.get(np.arange(2000))
  np.testing.assert_array_equal(batch["image"], expected)
  np.testing.assert_array_equal(batch["label"], labels)
  assert np.mean(expected != clean) > 0.5
  assert sorted(f for f in os.listdir(os.path.join(
      data_dir, "shapes32_corrupted")) if not f.startswith(".")) == [
          "contrast_5"]
  with pytest.raises(ValueError, match="Unknown split 'train'"):
    sources.open_split(name, "train", data_dir)


def test_corrupted_config_names_and_seeds():
  names = shapes32_corrupted.CONFIG_NAMES
  assert len(names) == 17 * 5 and "clean" not in names
  assert (shapes32_corrupted.config_seed("glass_blur_3")
          == shapes32_corrupted.config_seed("frosted_glass_blur_3"))
  assert len({shapes32_corrupted.config_seed(n) for n in names}) == 15 * 5

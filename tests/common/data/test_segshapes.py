"""Tests of the procedural segmentation dataset `segshapes`."""

import numpy as np
import pytest

from common.data import segshapes
from common.data import sources
from common.data.segshapes import render


def test_fewshot_scenes_are_deterministic_with_classes_and_ignore():
  first = render.render_split("fewshot", 5, 100)
  again = render.render_split("fewshot", 5, 100)
  for key in first:
    np.testing.assert_array_equal(first[key], again[key])
  labels = first["label"]
  assert first["image"].shape == (100, 32, 32, 3)
  assert set(np.unique(labels)) <= set(range(21)) | {segshapes.IGNORE}
  assert np.any(labels == segshapes.IGNORE) and np.any(labels == 0)
  # Every image holds its main class; the object classes all appear.
  for label, main in zip(labels, first["main_class"]):
    assert np.any(label == main)
  assert len(np.unique(first["main_class"])) == 20
  other = render.render_split("fewshot", 6, 100)
  assert np.mean(first["image"] != other["image"]) > 0.5


def test_folds_partition_the_object_classes():
  folds = [segshapes.fold_classes(f) for f in range(segshapes.NUM_FOLDS)]
  assert sorted(sum(folds, ())) == list(range(1, 21))
  with pytest.raises(ValueError, match="allowed 0..3"):
    segshapes.fold_classes(4)


def test_volumes_vary_along_the_stack_and_modalities_differ():
  source = render.render_split("source", 3, 2 * render.CHUNK)
  target = render.render_split("target", 3, 2 * render.CHUNK)
  # Same seed, same anatomy: labels equal, grey levels not.
  np.testing.assert_array_equal(source["label"], target["label"])
  assert np.abs(source["image"].astype(int) - target["image"]).mean() > 20
  # Class proportions change from slice to slice; end slices lose organs.
  sizes = np.stack([(source["label"] == c).mean((1, 2)) for c in range(4)],
                   -1).reshape(-1, segshapes.SLICES, 4)
  assert np.all(sizes[..., 1].std(1).mean() > 0.01)
  assert np.mean(sizes[:, [0, -1], 1:] == 0) > np.mean(
      sizes[:, 3:5, 1:] == 0)
  with pytest.raises(ValueError, match="segshapes has configs and splits"):
    segshapes.scenes("domains", "train")
  with pytest.raises(ValueError, match="whole volumes"):
    render.render_split("source", 3, 9)
  with pytest.raises(ValueError, match="modality must be one of"):
    render.render_volumes(np.random.default_rng(0), 1, "ct")


def test_open_split_reads_label_maps(tmp_path):
  source = sources.open_split("segshapes/domains", "target_test",
                              str(tmp_path))
  assert source.num_classes == 4 and len(source) == 400
  assert source.info.splits == {"source_train": 1600, "source_test": 400,
                                "target_train": 800, "target_test": 400}
  batch = source.get(np.arange(16))
  arrays = segshapes.scenes("domains", "target_test", 16)
  assert batch["label"].shape == (16, 32, 32)
  assert batch["label"].dtype == np.int32
  np.testing.assert_array_equal(batch["label"], arrays["label"])
  np.testing.assert_array_equal(batch["image"], arrays["image"])

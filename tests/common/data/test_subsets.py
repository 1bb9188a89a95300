"""Tests of the class filter `data.classes` (`common.data.subsets`)."""

import numpy as np
import pytest

from common.protocols import build
from common.protocols import supervised
from common.data import sources
from common.data import subsets
from tests.conftest import tiny_config


def test_open_split_keeps_and_relabels_classes(digits_dir):
  full = sources.open_split("digits", "test", digits_dir)
  labels = full.get(np.arange(len(full)))["label"]
  sub = sources.open_split("digits", "test", digits_dir, classes=(7, 2, 5))
  assert sub.num_classes == 3 and sub.info.num_classes == 3
  keep = np.isin(labels, [7, 2, 5])
  assert len(sub) == keep.sum()
  batch = sub.get(np.arange(len(sub)))
  np.testing.assert_array_equal(sub.positions, np.nonzero(keep)[0])
  # 7 -> 0, 2 -> 1, 5 -> 2, in the original order of the examples.
  new_label = {7: 0, 2: 1, 5: 2}
  np.testing.assert_array_equal(batch["label"],
                                [new_label[v] for v in labels[keep]])
  np.testing.assert_array_equal(
      batch["image"], full.get(np.nonzero(keep)[0])["image"])
  assert batch["label"].dtype == np.int32
  assert sources.open_split("digits", "test", digits_dir, classes=()) \
      .num_classes == 10


@pytest.mark.parametrize("classes, message", [
    ((3, 10), r"out of range for 'digits': \[10\]; allowed ids are 0..9"),
    ((-1,), r"out of range.*\[-1\]"),
    ((1, 1), "repeats a class id"),
    ((1.5,), "integer label ids"),
])
def test_bad_classes_are_clear_errors(digits_dir, classes, message):
  with pytest.raises(ValueError, match=message):
    sources.open_split("digits", "test", digits_dir, classes=classes)


def test_all_labels_reads_unmaterialized_sources(digits_dir):
  lazy = sources.open_split("digits", "test", digits_dir,
                            materialize_max_bytes=0)
  assert not lazy.materialized
  sub = subsets.ClassSubset(lazy, (0, 1))
  eager = sources.open_split("digits", "test", digits_dir, classes=(0, 1))
  np.testing.assert_array_equal(sub.get(np.arange(len(sub)))["label"],
                                eager.get(np.arange(len(eager)))["label"])


def test_config_key_reaches_both_harness_splits(digits_dir):
  config = tiny_config(**{"data.data_dir": digits_dir,
                          "data.classes": "(4, 9)"})
  assert supervised.base_config().data.classes == ()
  s = build.setup(config)
  assert s.run.num_classes == 2
  for source in (s.train_source, s.eval_source):
    assert source.num_classes == 2
    labels = source.get(np.arange(len(source)))["label"]
    assert set(np.unique(labels)) == {0, 1}
  logits = s.abstract_state.params[s.model.HEAD_NAME]["kernel"].shape[-1]
  assert logits == 2

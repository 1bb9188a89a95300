"""`data.category_discovery.continual`: one stage of gcd's stage_indices as
the training source, the seen classes' test examples as the eval source."""

import numpy as np
import pytest

from common import config as config_lib
from common.data import category_discovery as cd
from common.data import sources


def _cfg(stage):
  cfg = cd.default_config()
  cfg.update(kind="gcd", num_old=4, eval_on="test")
  cfg.continual = cd.continual_config()
  cfg.continual.update(stage=stage, num_stages=3, old_per_stage=10,
                       novel_new_per_stage=100, novel_seen_per_stage=10)
  return cfg


def test_stages_hold_their_classes_and_no_stage0_example():
  train = sources.open_split("digits", "train", None)
  test = sources.open_split("digits", "test", None)
  s0, e0 = cd.apply(train, test, _cfg(0))
  s2, e2 = cd.apply(train, test, _cfg(2))
  b0, b2 = s0.get(np.arange(len(s0))), s2.get(np.arange(len(s2)))
  assert b0["labelled"].all() and set(b0["label"]) == {0, 1, 2, 3}
  assert not b2["labelled"].any()
  counts = np.bincount(b2["label"], minlength=10)
  np.testing.assert_array_equal(counts, [10] * 6 + [100] * 2 + [0] * 2)
  assert not set(s0.positions) & set(s2.positions)   # no replay
  assert set(e0.labels) == {0, 1, 2, 3}
  assert set(e2.labels) == set(range(8))
  assert (e2.get(np.arange(len(e2)))["is_old"] == (e2.labels < 4)).all()


def test_bad_stage_is_one_line():
  train = sources.open_split("digits", "train", None)
  with pytest.raises(config_lib.ConfigError, match="continual.stage=4"):
    cd.apply(train, None, _cfg(4))

"""Category-discovery splits of the digits: masks, relabelling, stages."""

import numpy as np
import pytest

from common import config as config_lib
from common.data import category_discovery as cd
from common.data import sources


@pytest.fixture(scope="module")
def digits(digits_dir):
  return (sources.open_split("digits", "train", digits_dir),
          sources.open_split("digits", "test", digits_dir))


def _cfg(**kw):
  c = cd.default_config()
  c.update(kind="gcd", **kw)
  return c


def test_old_classes_first_labelled_only_old_and_eval_is_the_rest(digits):
  train, test = digits
  tr, ev = cd.apply(train, test, _cfg(old_classes=(7, 2, 9)))
  raw = train.get(np.arange(len(train)))["label"]
  assert tr.order[:3] == (7, 2, 9)
  np.testing.assert_array_equal(np.asarray(tr.order)[tr.labels], raw)
  assert not tr.labelled[tr.labels >= 3].any()
  n_old = np.sum(tr.labels < 3)
  assert tr.labelled.sum() == int(0.5 * n_old)
  batch = tr.get(np.arange(20))
  np.testing.assert_array_equal(batch["is_old"], batch["label"] < 3)
  assert set(batch) == {"image", "label", "labelled", "is_old"}
  # Evaluated on the unlabelled training examples, old and new.
  assert len(ev) == len(tr) - tr.labelled.sum() and not ev.labelled.any()
  again, _ = cd.apply(train, test, _cfg(old_classes=(7, 2, 9)))
  np.testing.assert_array_equal(again.labelled, tr.labelled)   # seeded
  other, _ = cd.apply(train, test, _cfg(old_classes=(7, 2, 9), seed=1))
  assert (other.labelled != tr.labelled).any()


def test_per_class_fraction_and_bad_sections(digits):
  train, test = digits
  tr, ev = cd.apply(train, test, _cfg(num_old=5, labelled_fraction=0.8,
                                      per_class=True, eval_on="test"))
  for c in range(5):
    assert tr.labelled[tr.labels == c].sum() == int(
        0.8 * np.sum(tr.labels == c))
  assert len(ev) == len(test)
  with pytest.raises(config_lib.ConfigError, match="labelled_fraction"):
    cd.check(_cfg(num_old=5, labelled_fraction=0.0))
  with pytest.raises(config_lib.ConfigError, match="num_old"):
    cd.check(_cfg())


def test_continual_stages_introduce_classes_without_replay(digits):
  train, _ = digits
  tr, _ = cd.apply(train, None, _cfg(num_old=5, eval_on="test"))
  stages = cd.stage_indices(tr.labels, 5, 2, labelled_fraction=0.8,
                            old_per_stage=10, novel_new_per_stage=50,
                            novel_seen_per_stage=10, seed=3)
  assert [s.new_classes for s in stages] == [(0, 1, 2, 3, 4), (5, 6),
                                             (7, 8, 9)]
  stage0 = set(stages[0].positions)
  assert stages[0].labelled.all() and set(tr.labels[stages[0].positions]) \
      == set(range(5))
  for s in stages[1:]:
    assert not s.labelled.any() and not stage0 & set(s.positions)
    counts = np.bincount(tr.labels[s.positions], minlength=10)
    assert all(counts[c] == 10 for c in range(5))
    assert all(counts[c] == 50 for c in s.new_classes)
  assert np.bincount(tr.labels[stages[2].positions])[5] == 10   # seen novel
  src = cd.stage_source(train, tr.order, 5, stages[1])
  assert len(src) == len(stages[1].positions)
  assert not src.get(np.arange(len(src)))["labelled"].any()

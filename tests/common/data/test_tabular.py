"""Imbalanced tabular sources: imbalance, stratified folds, eval fold whole
and masked, batches pure functions of the key, bad settings."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from common import config as config_lib
from common.data import procedural
from common.data import tabular
from tests.conftest import blobs_config


def _config(name, seed=0, eval_batch=1000, **kwargs):
  return config_lib.apply_overrides(blobs_config(), {
      "data.name": name, "seed": seed, "train.eval_batch_size": eval_batch,
      **{f"data.kwargs.{k}": v for k, v in kwargs.items()}})


def test_breast_cancer_minority_is_subsampled_as_in_the_paper():
  x, y = tabular.breast_cancer_table(0.1, 100)
  assert x.shape == (393, 30)
  assert (y == 0).sum() == 357 and (y == 1).sum() == 36   # round(35.7)


def test_generated_imbalance_and_pca():
  x, y = tabular.imbalanced_table(2000, 5, 3, 1, 0.2, 1.2, 0.0, 2, 0)
  assert x.shape == (2000, 2)
  assert abs(y.mean() - 0.2) < 0.01


def test_folds_are_stratified_and_partition_the_rows():
  y = np.array([0] * 90 + [1] * 13)
  ids = tabular.stratified_folds(y, 10, 0)
  for f in range(10):
    assert (y[ids == f] == 1).sum() in (1, 2)
    assert (ids == f).sum() in (10, 11)
  np.testing.assert_array_equal(ids, tabular.stratified_folds(y, 10, 0))


def test_seed_picks_the_held_out_fold_and_eval_is_the_whole_fold():
  held_out = []
  for seed in (0, 1, 10):
    config = _config("breast_cancer_imbalanced", seed=seed, eval_batch=48)
    gen = procedural.make(config)
    batch = gen.eval_sample(jax.random.PRNGKey(5), 48)
    n = gen.eval_examples
    assert 39 <= n <= 40 and int(batch["mask"].sum()) == n
    assert not bool(batch["mask"][n:].any())
    held_out.append(np.asarray(batch["x"][:n]))
    # Training batches: a pure function of the key, labels in {0, 1}.
    a = gen.sample(jax.random.PRNGKey(3), 16)
    b = gen.sample(jax.random.PRNGKey(3), 16)
    np.testing.assert_array_equal(a["x"], b["x"])
    assert set(np.unique(a["label"])) <= {0, 1}
  assert held_out[0].shape != held_out[1].shape or not np.allclose(
      held_out[0], held_out[1])
  np.testing.assert_array_equal(held_out[0], held_out[2])   # seed 10 = fold 0


def test_bad_settings_are_config_errors():
  with pytest.raises(config_lib.ConfigError, match="eval_batch_size"):
    procedural.make(_config("breast_cancer_imbalanced", eval_batch=8))
  with pytest.raises(config_lib.ConfigError, match="minority_fraction"):
    procedural.make(_config("imbalanced_binary", minority_fraction=0.7))

"""Few-label probe (T-JEPA's evaluator) and the `tabular_ssl` tables."""

import ml_collections as mlc
import numpy as np
import pytest

from common import config as config_lib
from common.data import tabular
from common.eval import few_label_probe
from common.eval import linear_probe


def test_closed_form_loo_equals_refitting_without_each_row():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(24, 5))
  y = (x[:, 0] + 0.5 * rng.normal(size=24) > 0).astype(int) + (x[:, 1] > 1)
  ridges = (1e-3, 1e-1, 10.0)
  best, accs = linear_probe.ridge_probe_loo(x, y, 3, ridges)
  for lam, acc in zip(ridges, accs):
    hits = 0
    for i in range(len(y)):
      keep = np.arange(len(y)) != i
      # the LOO formula keeps the full-data standardisation and n in lam n
      z = (x - x.mean(0)) / (x.std(0) + 1e-8)
      z = np.concatenate([z, np.ones((len(y), 1))], 1)
      gram = z[keep].T @ z[keep] + lam * len(y) * np.eye(z.shape[1])
      w = np.linalg.solve(gram, z[keep].T @ np.eye(3)[y[keep]])
      hits += int(np.argmax(z[i] @ w) == y[i])
    assert acc == pytest.approx(100.0 * hits / len(y))
  assert best == max(r for r, a in zip(ridges, accs) if a == accs.max())


def test_labelled_subsets_raw_one_hot_and_scores():
  y = np.array([0] * 90 + [1] * 10)
  idx = few_label_probe.labelled_subset(y, 0.01, seed=0)
  assert np.bincount(y[idx]).tolist() == [1, 1]          # >= 1 per class
  assert len(few_label_probe.labelled_subset(y, 1.0, 0)) == 100
  assert few_label_probe.fraction_name(0.01) == "1"
  assert few_label_probe.fraction_name(0.005) == "0p5"
  raw = few_label_probe.one_hot_raw(np.array([[0.5, 2.0], [1.5, 0.0]]), (3,))
  np.testing.assert_array_equal(raw, [[0.5, 0, 0, 1], [1.5, 1, 0, 0]])
  rng = np.random.default_rng(1)
  x = rng.normal(size=(200, 3))
  yy = (x[:, 0] > 0).astype(int)
  out = few_label_probe.probe_scores(x[:150], x[150:], x[:150], x[150:],
                                     yy[:150], yy[150:], 2, (0.1, 1.0), 0)
  assert out["raw_acc_100"] == out["emb_acc_100"] > 90
  assert out["gain_10"] == 0.0 and out["labels_10"] == 15
  assert few_label_probe.effective_rank(np.outer(x[:, 0], [1, 2])) < 1.01


def _config(**kwargs):
  c = mlc.ConfigDict(dict(seed=0, data=dict(name="tabular_ssl", data_dir="",
                                            kwargs=kwargs),
                          train=dict(eval_batch_size=2000)))
  return c


def test_tabular_ssl_tables_split_standardise_and_code_categories():
  parts = tabular.tabular_ssl_parts(_config(
      num_examples=400, num_features=6, num_informative=3, num_redundant=1,
      num_classes=3, num_categorical=2, cat_bins=3))
  assert parts["x_train"].shape == (320, 6) and len(parts["y_test"]) == 80
  np.testing.assert_allclose(parts["x_train"][:, :4].mean(0), 0, atol=1e-5)
  assert set(np.unique(parts["x_train"][:, 4:])) == {0.0, 1.0, 2.0}
  assert parts["cat_cardinalities"] == (3, 3) and parts["num_classes"] == 3
  assert tabular.tabular_ssl_schema(dict(table="wine")) == dict(
      num_features=13, cat_cardinalities=(), num_classes=3)
  with pytest.raises(FileNotFoundError, match="x_num, x_cat, y"):
    tabular.tabular_ssl_parts(_config(table="npz", path="nowhere.npz"))
  with pytest.raises(config_lib.ConfigError, match="table"):
    tabular.tabular_ssl_parts(_config(table="covtype"))

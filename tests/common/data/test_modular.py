"""The corrupted modular-arithmetic dataset and its generator."""

from __future__ import annotations

import jax
import ml_collections as mlc
import numpy as np
import pytest

from common import config as config_lib
from common.data import modular


@pytest.mark.parametrize("xi", [0.0, 0.1, 0.35, 0.9])
def test_realised_corruption_rate_equals_the_config(xi):
  d = modular.modular_dataset(23, "add", 0.5, xi, seed=3, relabel="other")
  train = d.split("train")
  assert d.num_train == int(0.5 * 23 * 23)
  assert train["corrupted"].sum() == int(xi * d.num_train) == d.num_relabelled
  # the corrupted examples are exactly those whose label is wrong
  np.testing.assert_array_equal(
      train["corrupted"], train["label"] != train["true_label"])
  assert not d.split("test")["corrupted"].any()


def test_uniform_relabelling_redraws_the_configured_number():
  d = modular.modular_dataset(97, "add", 0.5, 0.35, seed=0)
  assert d.num_relabelled == int(0.35 * 4704)
  # the official rule: ~1/p of the redrawn labels happen to be right
  kept = d.num_relabelled - d.corrupted.sum()
  assert 0 < kept < 3 * d.num_relabelled / 97
  assert not d.corrupted[d.num_relabelled:].any()


@pytest.mark.parametrize("op,fn", [("add", lambda a, b: a + b),
                                   ("sub", lambda a, b: a - b),
                                   ("mul", lambda a, b: a * b)])
def test_labels_and_split_cover_every_pair_once(op, fn):
  p = 11
  d = modular.modular_dataset(p, op, 0.3, 0.2, seed=1)
  np.testing.assert_array_equal(d.true_label, fn(d.x[:, 0], d.x[:, 1]) % p)
  pairs = {tuple(x) for x in d.x}
  assert len(pairs) == p * p
  test = d.split("test")
  np.testing.assert_array_equal(test["label"], test["true_label"])


def test_a_pure_function_of_the_seed():
  a = modular.modular_dataset(13, "add", 0.5, 0.3, seed=5)
  b = modular.modular_dataset(13, "add", 0.5, 0.3, seed=5)
  c = modular.modular_dataset(13, "add", 0.5, 0.3, seed=6)
  np.testing.assert_array_equal(a.x, b.x)
  np.testing.assert_array_equal(a.label, b.label)
  assert not np.array_equal(a.x, c.x)


def _config(**kwargs):
  c = mlc.ConfigDict({"seed": 2, "data": {"name": "modular", "kwargs": {
      "p": 13, "train_fraction": 0.5, "corruption": 0.25, **kwargs}},
                      "train": {"batch_size": 88}})
  return c


def test_generator_serves_the_whole_training_set_as_one_batch():
  gen = modular.make(_config())
  d = modular.dataset_from_config(_config())
  batch = gen.sample(jax.random.PRNGKey(0), 88)
  assert gen.epoch_size == 88 and gen.num_classes == 13
  np.testing.assert_array_equal(batch["mask"], np.arange(88) < d.num_train)
  n = d.num_train
  np.testing.assert_array_equal(batch["x"][:n], d.split("train")["x"])
  np.testing.assert_array_equal(batch["label"][:n], d.split("train")["label"])
  sub = gen.sample(jax.random.PRNGKey(1), 16)
  assert len(set(np.asarray(sub["index"]).tolist())) == 16
  test = gen.eval_sample(jax.random.PRNGKey(0), 88)
  np.testing.assert_array_equal(test["true_label"][:169 - n],
                                d.split("test")["true_label"])


@pytest.mark.parametrize("key,value", [("corruption", 1.0),
                                       ("train_fraction", 1.0),
                                       ("operation", "div"),
                                       ("relabel", "flip")])
def test_bad_settings_name_what_is_allowed(key, value):
  with pytest.raises(config_lib.ConfigError, match=key):
    modular.make(_config(**{key: value}))

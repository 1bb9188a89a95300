"""Tests of synthetic label noise (`common.data.label_noise`)."""

import ml_collections as mlc
import numpy as np
import pytest

from common import config as config_lib
from common.data import label_noise
from common.eval import memorisation
from common.protocols import build
from common.protocols import supervised
from tests.conftest import tiny_config

K = 10
# 2,000 examples per class: the realised rates are within ~1% of the target.
CLEAN = np.repeat(np.arange(K), 2000)


def noise(**kw) -> mlc.ConfigDict:
  cfg = label_noise.default_config()
  cfg.update(kw)
  return cfg


def realised_transition(clean, noisy, k):
  """`[k, k]` empirical P(noisy = j | clean = i)."""
  t = np.zeros((k, k))
  np.add.at(t, (clean, noisy), 1)
  return t / t.sum(1, keepdims=True)


@pytest.mark.parametrize("cfg, atol", [
    (noise(kind="none"), 0.0),
    (noise(kind="symmetric", rate=0.4), 0.04),
    (noise(kind="symmetric_flip", rate=0.4), 0.04),
    (noise(kind="asymmetric", rate=0.4, map="cifar10"), 0.0),
    (noise(kind="asymmetric", rate=0.3, map="mnist"), 0.0),
    (noise(kind="asymmetric", rate=0.4, map="shapes32"), 0.0),
    (noise(kind="asymmetric", rate=0.2, map="next"), 0.0),
    (noise(kind="asymmetric", rate=0.4, map="cifar100"), 0.0),
    (noise(kind="asymmetric", rate=0.25,
           permutation=(0, 2, 1, 4, 3, 5, 6, 7, 9, 8)), 0.0),
])
def test_realised_transition_matrix_matches_config(cfg, atol):
  noisy = label_noise.noisy_labels(cfg, CLEAN, K)
  want = label_noise.transition_matrix(cfg, K)
  np.testing.assert_allclose(realised_transition(CLEAN, noisy, K), want,
                             atol=atol)
  np.testing.assert_allclose(want.sum(1), 1.0)
  # The corrupted fraction is the mass off the diagonal.
  np.testing.assert_allclose(np.mean(noisy != CLEAN),
                             1 - np.trace(want) / K, atol=max(atol / 4, 1e-9))


def test_paper_flip_maps():
  flips = label_noise.flip_map(noise(kind="asymmetric", map="cifar10"), K)
  # truck->automobile, bird->airplane, deer->horse, cat<->dog
  assert dict(enumerate(flips.tolist())) == {
      0: 0, 1: 1, 2: 0, 3: 5, 4: 7, 5: 3, 6: 6, 7: 7, 8: 8, 9: 1}
  flips = label_noise.flip_map(noise(kind="asymmetric", map="cifar100"), 100)
  assert flips[:10].tolist() == [1, 2, 3, 4, 0, 6, 7, 8, 9, 5]
  assert sorted(flips.tolist()) == list(range(100))


def test_instance_noise_rate_and_dependence_on_images():
  rng = np.random.default_rng(0)
  n = 4000
  clean = np.arange(n) % K
  images = rng.integers(0, 256, (n, 8, 8, 1), dtype=np.uint8)
  cfg = noise(kind="instance", rate=0.4)
  noisy = label_noise.noisy_labels(cfg, clean, K, images)
  assert abs(np.mean(noisy != clean) - 0.4) < 0.03
  again = label_noise.noisy_labels(cfg, clean, K, lambda i: images[i])
  np.testing.assert_array_equal(noisy, again)
  # Instance-dependent: the same class and flip rate go elsewhere for
  # other images (the target classes depend on x).
  other = label_noise.noisy_labels(cfg, clean, K, 255 - images)
  assert np.mean(noisy != other) > 0.2
  t = realised_transition(clean, noisy, K)
  np.testing.assert_allclose(np.diag(t), 0.6, atol=0.06)


def test_deterministic_in_seed_and_config():
  cfg = noise(kind="symmetric", rate=0.4, seed=3)
  a = label_noise.noisy_labels(cfg, CLEAN, K)
  np.testing.assert_array_equal(a, label_noise.noisy_labels(cfg, CLEAN, K))
  b = label_noise.noisy_labels(noise(kind="symmetric", rate=0.4, seed=4),
                               CLEAN, K)
  assert np.mean(a != b) > 0.3


@pytest.mark.parametrize("overrides, message", [
    ({"kind": "gaussian"}, r"kind='gaussian' is not allowed: expected one of "
     r"\['none', 'symmetric'"),
    ({"kind": "symmetric", "rate": 1.0}, r"rate=1.0 is not allowed: expected "
     r"a number in \[0, 1\)"),
    ({"kind": "symmetric", "rate": -0.1}, r"rate=-0.1 is not allowed"),
    ({"rate": 0.2}, r"needs a kind"),
    ({"kind": "asymmetric", "rate": 0.2, "permutation": (0, 0, 1)},
     r"not a permutation of the classes: expected each of 0..2 exactly once"),
    ({"kind": "asymmetric", "rate": 0.2, "map": "cifar"},
     r"map='cifar' is not allowed: expected one of \['cifar10'"),
    ({"kind": "asymmetric", "rate": 0.2}, r"exactly one of map"),
    ({"kind": "symmetric", "rate": 0.2, "map": "next"}, r"only apply to kind"),
])
def test_bad_noise_config_is_a_one_line_config_error(overrides, message):
  config = tiny_config(**{f"data.label_noise.{k}": v
                          for k, v in overrides.items()})
  with pytest.raises(config_lib.ConfigError, match=message) as e:
    supervised.validate(config)
  assert "\n" not in str(e.value)


def test_map_that_does_not_fit_the_dataset_is_a_config_error():
  with pytest.raises(config_lib.ConfigError, match="has 3 entries; the "
                     "dataset has 10 classes"):
    label_noise.check(noise(kind="asymmetric", rate=0.1,
                            permutation=(1, 2, 0)), 10)
  with pytest.raises(config_lib.ConfigError, match="is for 10 classes"):
    label_noise.check(noise(kind="asymmetric", rate=0.1, map="cifar10"), 100)


def test_batches_carry_noisy_and_clean_labels_and_indices(tfds_data_dir):
  del tfds_data_dir
  config = tiny_config(**{"data.label_noise.kind": "symmetric_flip",
                          "data.label_noise.rate": 0.4})
  clean_source = build.open_data(tiny_config())[0]
  train = build.open_data(config)[0]
  clean = clean_source.get(np.arange(len(clean_source)))["label"]
  np.testing.assert_array_equal(train.clean_labels, clean)
  assert abs(train.corrupted.mean() - 0.4) < 0.01
  batch = next(iter(build.setup(config).train_batches(0)))
  index = np.asarray(batch["index"])
  np.testing.assert_array_equal(np.asarray(batch["clean_label"]), clean[index])
  np.testing.assert_array_equal(np.asarray(batch["label"]),
                                train.labels[index])
  # The held-out split stays clean.
  assert not hasattr(build.open_data(config)[1], "clean_labels")


def test_memorisation_metrics():
  noisy = np.array([0, 1, 2, 3, 1, 1])
  clean = np.array([0, 1, 2, 3, 0, 2])
  predicted = np.array([0, 1, 0, 0, 1, 2])
  m = memorisation.memorisation_metrics(predicted, noisy, clean)
  assert m == {"corrupted_pred_true": 0.5, "corrupted_pred_noisy": 0.5,
               "clean_pred_true": 0.5, "corrupted_fraction": 2 / 6}

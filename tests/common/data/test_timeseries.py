"""Time-series sources: the regime-switching generator is a pure function
of its key and its switch points match its regimes; the CSV reader's splits
and its missing-file error."""

from __future__ import annotations

import jax
import ml_collections as mlc
import numpy as np
import pytest

from common.data import timeseries

KW = dict(context_len=24, horizon=8, mean_duration=6.0, burn_in=8)


def _draw(key, n=16):
  params = timeseries.regime_parameters(3, 2, world_seed=0)
  draw = jax.jit(lambda k: timeseries.sample_regime_ar(
      k, n, params=params, **KW))
  return jax.tree.map(np.asarray, draw(jax.random.PRNGKey(key)))


def test_regime_ar_is_deterministic_and_consistent():
  a, b, c = _draw(0), _draw(0), _draw(1)
  for k in a:
    np.testing.assert_array_equal(a[k], b[k])
  assert not np.allclose(a["x"], c["x"])
  assert a["x"].shape == (16, 24, 2) and a["y"].shape == (16, 8, 2)
  assert a["regime"].shape == a["switch"].shape == (16, 32)
  # Switches are exactly the steps whose regime differs from the last one.
  np.testing.assert_array_equal(a["switch"][:, 1:],
                                a["regime"][:, 1:] != a["regime"][:, :-1])
  rate = a["switch"][:, 1:].mean()
  assert 0.05 < rate < 0.35          # 1 / mean_duration = 0.17


def test_regime_ar_generator_from_config():
  config = mlc.ConfigDict(dict(data=dict(name="regime_ar", kwargs=dict(
      context_len=24, horizon=8, channels=2))))
  gen = timeseries.regime_ar(config)
  assert gen.example["x"].shape == (1, 24, 2)
  config.data.kwargs.bogus = 1
  with pytest.raises(ValueError, match="bogus"):
    timeseries.regime_ar(config)


def test_csv_reader_splits_and_missing_file(tmp_path):
  config = mlc.ConfigDict(dict(data=dict(
      name="ltsf_csv", data_dir=str(tmp_path),
      kwargs=dict(dataset="weather", context_len=4, horizon=2))))
  with pytest.raises(FileNotFoundError, match="weather.csv"):
    timeseries.split_windows(config, "test")
  rows = 100
  with open(tmp_path / "weather.csv", "w") as f:
    f.write("date,a,OT,b\n")
    for t in range(rows):
      f.write(f"2020-01-01 {t},{t},{2 * t},{-t}\n")
  splits = timeseries.standardised_splits(str(tmp_path), "weather", 4)
  # 70/10/20 with each later split starting L=4 rows early; OT last.
  assert [len(splits[s]) for s in timeseries.SPLITS] == [70, 14, 24]
  np.testing.assert_allclose(splits["train"].mean(0), 0, atol=1e-5)
  test = timeseries.split_windows(config, "test")
  assert test["x"].shape == (24 - 6 + 1, 4, 3)
  # Columns a, b, OT (target last), each standardised: OT = a, b = -a.
  np.testing.assert_allclose(test["x"][..., 2], test["x"][..., 0], atol=1e-5)
  np.testing.assert_allclose(test["x"][..., 1], -test["x"][..., 0],
                             atol=1e-5)

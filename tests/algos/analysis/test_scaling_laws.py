"""Scaling-law fits, bootstrap intervals and crossovers (pure numpy)."""

import numpy as np
import pytest

from algos.analysis import scaling_laws as sl

_N = np.array([1e4, 3e4, 1e5, 3e5, 1e6])


def test_fit_recovers_a_noiseless_law_and_its_asymptote():
  fit = sl.fit_power_law(_N, sl.power_law(_N, 50.0, 0.4, 1.7))
  np.testing.assert_allclose([fit.a, fit.alpha, fit.e], [50.0, 0.4, 1.7],
                             rtol=1e-5)
  pure = sl.fit_power_law(_N, sl.power_law(_N, 3.0, 0.3, 0.0),
                          fit_asymptote=False)
  np.testing.assert_allclose([pure.a, pure.alpha, pure.e], [3.0, 0.3, 0.0],
                             rtol=1e-5)
  with pytest.raises(ValueError, match="need >= 3 positive scales"):
    sl.fit_power_law(_N[:2], [1.0, 2.0])


def test_bootstrap_interval_covers_the_truth_and_shrinks_with_noise():
  rng = np.random.default_rng(0)
  truth = sl.power_law(_N, 50.0, 0.4, 1.7)
  wide = sl.fit_with_ci(_N, [t + rng.normal(0, 0.02, 4) for t in truth],
                        num_boot=40)
  narrow = sl.fit_with_ci(_N, [t + rng.normal(0, 0.002, 4) for t in truth],
                          num_boot=40)
  assert wide["e_lo"] <= 1.7 <= wide["e_hi"]
  assert narrow["e_hi"] - narrow["e_lo"] < wide["e_hi"] - wide["e_lo"]
  lo, hi = sl.bootstrap_mean_ci([0.1, 0.3, 0.2, 0.25])
  assert 0.1 <= lo < 0.2125 < hi <= 0.3


def test_crossover_is_where_the_two_laws_are_equal():
  f1, f2 = sl.PowerLawFit(10.0, 0.5, 1.0, 0.0), sl.PowerLawFit(
      2.0, 0.2, 1.3, 0.0)
  x = sl.crossover(f1, f2, 1.0, 1e8)
  assert x is not None and 1.0 < x < 1e8
  np.testing.assert_allclose(sl.power_law(x, 10.0, 0.5, 1.0),
                             sl.power_law(x, 2.0, 0.2, 1.3), rtol=1e-9)
  assert sl.crossover(f1, f1._replace(e=2.0), 1.0, 1e8) is None
  # Recipe 1 wins small, recipe 2 (lower asymptote) wins large: the
  # bootstrap places the crossover inside the range every time.
  n = np.geomspace(10, 1e4, 5)
  rng = np.random.default_rng(1)
  y1 = [v + rng.normal(0, 1e-3, 3) for v in sl.power_law(n, 2.0, 0.5, 1.0)]
  y2 = [v + rng.normal(0, 1e-3, 3) for v in sl.power_law(n, 5.0, 0.3, 0.7)]
  out = sl.crossover_with_ci(n, y1, y2, num_boot=20)
  assert out["small_winner"] == 1 and out["p_cross"] == 1.0
  assert out["lo"] <= out["crossover"] <= out["hi"]

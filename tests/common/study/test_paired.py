"""Paired arm comparisons: sign test and paired t-test against scipy."""

from __future__ import annotations

import numpy as np
from scipy import stats

from common.study import paired


def test_sign_and_t_tests_match_scipy():
  a = [5.0, 4.0, 6.0, 5.5, 4.5, 5.0]
  b = [4.0, 3.5, 6.5, 4.0, 4.5, 3.0]          # 4 lower, 1 higher, 1 tie
  r = paired.compare(a, b, lower_is_better=True)
  assert (r["wins"], r["losses"], r["ties"]) == (4, 1, 1)
  assert np.isclose(r["sign_p"], stats.binomtest(4, 5).pvalue)
  assert np.isclose(r["t_p"], stats.ttest_rel(b, a).pvalue)
  assert np.isclose(r["mean_diff"], np.mean(np.subtract(b, a)))
  flipped = paired.compare(a, b, lower_is_better=False)
  assert (flipped["wins"], flipped["losses"]) == (1, 4)
  finals = {"A": {0: {"error": 1.0}, 1: {"error": 2.0}},
            "B": {0: {"error": 0.5}, 1: {"error": 1.0}}}
  md = paired.table(finals, "error")
  assert "| A | B | -0.75 |" in md and "2 / 0 / 0" in md

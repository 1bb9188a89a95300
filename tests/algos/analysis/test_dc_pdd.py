"""DC-PDD and the baseline membership scores: hand examples, parity."""

import importlib.util
import os
import sys
from unittest import mock

import numpy as np
import pytest

from algos.analysis import dc_pdd


def test_first_occurrence_and_score_by_hand():
  ids = np.array([[5, 7, 5, 9, 7, 0]])
  mask = np.array([[1, 1, 1, 1, 1, 0]], bool)
  keep = np.asarray(dc_pdd.first_occurrence(ids, mask))
  np.testing.assert_array_equal(keep, [[1, 1, 0, 1, 0, 0]])
  freqs = np.full(10, 0.1, np.float32)
  freqs[7] = 0.01
  logp = np.log(np.array([[0.5, 0.9, 0.1, 0.2, 0.3, 0.9]], np.float32))
  # First occurrences 5, 7, 9: p * log(1/f), clipped at a = 1.
  want = np.mean([min(0.5 * np.log(10), 1.0), min(0.9 * np.log(100), 1.0),
                  min(0.2 * np.log(10), 1.0)])
  got = dc_pdd.dc_pdd_score(logp, ids, mask, freqs, np.float32(1.0))
  np.testing.assert_allclose(got, [want], rtol=1e-5)
  np.testing.assert_allclose(dc_pdd.loss_score(logp, mask),
                             [np.mean(logp[0, :5])], rtol=1e-5)
  # int(0.4 * 5) = 2 lowest: log 0.1 and log 0.2.
  np.testing.assert_allclose(dc_pdd.min_k_score(logp, mask, 0.4),
                             [np.log(0.1 * 0.2) / 2], rtol=1e-5)


def test_roc_metrics_and_smoothing():
  s = np.array([0.9, 0.8, 0.3, 0.2])
  y = np.array([1, 1, 0, 0])
  assert dc_pdd.auroc(s, y) == 1.0 and dc_pdd.tpr_at_fpr(s, y) == 1.0
  assert dc_pdd.auroc(-s, y) == 0.0
  f = dc_pdd.smoothed_frequencies(np.array([3, 0, 1]))
  np.testing.assert_allclose(f, [4 / 7, 1 / 7, 2 / 7])
  with pytest.raises(ValueError, match="non-negative"):
    dc_pdd.smoothed_frequencies(np.array([1, -1]))
  with pytest.raises(ValueError, match="k="):
    dc_pdd.min_k_score(np.zeros((1, 2)), np.ones((1, 2)), 0.0)


_OFFICIAL = os.environ.get("REGJAX_OFFICIAL_DC_PDD_DIR")


@pytest.mark.skipif(not _OFFICIAL, reason="set REGJAX_OFFICIAL_DC_PDD_DIR to "
                    "a checkout of zhang-wei-chao/DC-PDD")
def test_parity_with_official_cal_met():
  import transformers  # pylint: disable=g-import-not-at-top,unused-import
  stubs = {m: mock.MagicMock() for m in ("jieba",)
           if importlib.util.find_spec(m) is None}
  sys.modules.update(stubs)
  try:
    spec = importlib.util.spec_from_file_location(
        "official_dc_pdd", os.path.join(_OFFICIAL, "com_det_sco.py"))
    off = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(off)
  finally:
    for m in stubs:
      sys.modules.pop(m, None)
  rng = np.random.default_rng(0)
  vocab, t, n = 50, 30, 6
  freqs = dc_pdd.smoothed_frequencies(rng.integers(0, 100, vocab))
  rows = []
  for i in range(n):
    logp = np.log(rng.uniform(0.01, 1.0, t))
    rows.append(dict(text=" ".join(f"w{j}" for j in range(t)),
                     tar_prob=logp, low_prob=logp, ref_prob=logp,
                     tar_prob_mu=np.zeros(t), tar_prob_sigma=np.ones(t),
                     input_ids=rng.integers(0, vocab, t), label=i % 2))
  # The script reads two globals: the tokenizer (only token counts) and
  # the frequency table (we pass the smoothed one it computes).
  off.tokenizer = mock.MagicMock()
  off.tokenizer.encode = lambda text: list(range(t))
  off.fre_dis = freqs
  theirs = off.cal_met(rows, "en", 512, 0.01)
  logp = np.stack([r["tar_prob"] for r in rows]).astype(np.float32)
  ids = np.stack([r["input_ids"] for r in rows])
  mask = np.ones_like(ids, bool)
  ours = {
      "DC-PDD": dc_pdd.dc_pdd_score(logp, ids, mask,
                                    freqs.astype(np.float32),
                                    np.float32(0.01)),
      "min_20% prob": dc_pdd.min_k_score(logp, mask, 0.2),
      "ppl": np.exp(-np.asarray(dc_pdd.loss_score(logp, mask))),
      "tar_ppl/zlib": dc_pdd.zlib_score(logp, mask,
                                        [r["text"] for r in rows])}
  sign = {"DC-PDD": -1, "min_20% prob": -1, "ppl": 1, "tar_ppl/zlib": -1}
  for key, ours_k in ours.items():
    want = [e["pred"][key] for e in theirs]
    np.testing.assert_allclose(sign[key] * np.asarray(ours_k), want,
                               rtol=1e-4, err_msg=key)

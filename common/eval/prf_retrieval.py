"""Evaluator `prf_retrieval`: full-corpus retrieval with k feedback docs.

For the test queries of `common.data.prf_corpus.load(config)` and each
feedback count `k` in `config.eval.ks` (default `0..max_feedback`), the
method's eval-mode `predict` reads the query and the first `k` documents of
its BM25 run (rank order, as the official `--do_predict` with `prfK`) and
writes `query_vector [Q, V]`; every document is scored `index @ q'`, and
(`common.eval.ranking_metrics`, relevant = grade >= `eval.rel_threshold`,
default 2 = the query's subtopic):

* `map_k<k>`, `ndcg10_k<k>` (graded), `recall100_k<k>`, `mrr10_k<k>`;
* `mono_violations`: % of (query, consecutive k pair) whose AP drops by
  more than 1e-6 when k grows (fewer is "more feedback helps");
  `gain_k<K>`: mean AP(K) - AP(0) of the same model in points;
* `gate_rel` / `gate_irrel`: the reformulator's mean gate on the grade-2 /
  other feedback documents at the largest k (models returning `gates`);
* references without training: `bm25_map` / `bm25_ndcg10` (the raw
  query) and `rocchio_map_k<k>` (`q/|q| + beta * mean_i d_i/|d_i|`,
  `beta = eval.rocchio_beta`, default 1), the classic PRF's query drift.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from common.data import prf_corpus
from common.eval import evaluators
from common.eval import ranking_metrics as rm


def _unit(x: np.ndarray) -> np.ndarray:
  return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-9)


def monotonicity_violations(ap_by_k: np.ndarray, tol: float = 1e-6
                            ) -> float:
  """% of (query, consecutive count pair) where AP drops: `ap_by_k [Q, m]`
  with counts increasing along axis 1."""
  if ap_by_k.shape[1] < 2:
    return 0.0
  return 100.0 * float(np.mean(ap_by_k[:, 1:] < ap_by_k[:, :-1] - tol))


@evaluators.register_evaluator("prf_retrieval")
def prf_retrieval(setup: Any, state: Any) -> dict[str, float]:
  config = setup.config
  data = prf_corpus.load(config)
  kmax = int(prf_corpus.feedback_settings(config)["max_feedback"])
  ks = tuple(int(k) for k in config.eval.get("ks", range(kmax + 1)))
  if not ks or min(ks) < 0 or max(ks) > kmax or list(ks) != sorted(ks):
    raise ValueError(f"eval.ks={ks} must increase within 0..max_feedback="
                     f"{kmax}")
  threshold = int(config.eval.get("rel_threshold", 2))
  beta = float(config.eval.get("rocchio_beta", 1.0))
  chunk = int(config.train.eval_batch_size)
  test = data.test
  qrels = data.qrels(test)
  fb_ids = test.run[:, :kmax]
  fb = data.index[fb_ids]                                   # [Q, K, V]
  n = len(test.counts)
  result, aps = {}, []
  for k in ks:
    mask = np.broadcast_to(np.arange(kmax) < k, (n, kmax))
    parts = []
    for i in range(0, n, chunk):
      batch = {"inputs": {"query": test.counts[i:i + chunk],
                          "fb": fb[i:i + chunk],
                          "fb_mask": np.ascontiguousarray(mask[i:i + chunk])}}
      # One output signature for every k: one compile of the eval step.
      parts.append(evaluators.predict(setup, state, batch,
                                      ("query_vector", "gates")))
    qv = np.concatenate([p["query_vector"] for p in parts])
    summary = rm.summary(qv @ data.index.T, qrels, threshold)
    for name, values in summary.items():
      result[f"{name}_k{k}"] = float(values.mean())
    aps.append(summary["map"])
    if k == max(ks) and k > 0:
      gates = np.concatenate([p["gates"] for p in parts])[:, :k]
      rel = np.take_along_axis(qrels, fb_ids[:, :k], 1) >= threshold
      result["gate_rel"] = float(gates[rel].mean()) if rel.any() else 0.0
      result["gate_irrel"] = float(gates[~rel].mean()) if (~rel).any() else 0.0
    rocchio = _unit(test.counts) + (
        beta * _unit(fb[:, :k]).mean(1) if k else 0.0)
    result[f"rocchio_map_k{k}"] = float(rm.summary(
        rocchio @ data.index.T, qrels, threshold)["map"].mean())
  aps = np.stack(aps, 1)
  result["mono_violations"] = monotonicity_violations(aps)
  result[f"gain_k{max(ks)}"] = float(np.mean(aps[:, -1] - aps[:, 0]))
  bm25 = rm.summary(test.counts @ data.index.T, qrels, threshold)
  result["bm25_map"] = float(bm25["map"].mean())
  result["bm25_ndcg10"] = float(bm25["ndcg10"].mean())
  return result

"""Ranking metrics with graded relevance, as trec_eval computes them.

Every `*_at` / `average_precision` function takes `scores [Q, N]` (higher =
better; ties broken by the lower document index, a stable sort) and
integer grades `qrels [Q, N]` (0 = not relevant), and returns per-query
values `[Q]`:

* `average_precision`: relevant = grade >= `threshold`; mean of the
  precision at the rank of each relevant document, over *all* relevant
  documents (those never retrieved count 0), trec_eval's `map` with the
  whole ranking;
* `ndcg_at`: linear gains (the grade, trec_eval's `ndcg_cut`), log2(rank+1)
  discount, normalised by the ideal ordering's DCG@k (0 when nothing is
  relevant);
* `recall_at`: share of the relevant documents in the top k;
* `reciprocal_rank_at`: 1 / rank of the first relevant document in the top
  k (0 when none), MS MARCO's MRR@10 with k = 10.

`summary(scores, qrels, threshold)` computes all four from one sort.
"""

from __future__ import annotations

import numpy as np


def ranked_grades(scores: np.ndarray, qrels: np.ndarray) -> np.ndarray:
  """`[Q, N]` grades in ranked order (stable descending sort of scores)."""
  order = np.argsort(-np.asarray(scores, np.float64), axis=1, kind="stable")
  return np.take_along_axis(np.asarray(qrels), order, 1)


def _ap(ranked, threshold):
  rel = (ranked >= threshold).astype(np.float64)
  prec = np.cumsum(rel, axis=1) / np.arange(1, rel.shape[1] + 1)[None]
  total = rel.sum(axis=1)
  return np.where(total > 0, np.sum(prec * rel, 1) / np.maximum(total, 1),
                  0.0)


def _ndcg(ranked, qrels, k):
  gains = ranked[:, :k].astype(np.float64)
  disc = 1.0 / np.log2(np.arange(2, gains.shape[1] + 2))[None]
  ideal = -np.sort(-np.asarray(qrels, np.float64), axis=1)[:, :k]
  idcg = np.sum(ideal * disc[:, :ideal.shape[1]], 1)
  return np.where(idcg > 0, np.sum(gains * disc, 1) / np.maximum(idcg, 1e-12),
                  0.0)


def _recall(ranked, k, threshold):
  rel = ranked >= threshold
  total = rel.sum(axis=1)
  return np.where(total > 0, rel[:, :k].sum(1) / np.maximum(total, 1), 0.0)


def _rr(ranked, k, threshold):
  rel = ranked[:, :k] >= threshold
  return np.where(rel.any(1), 1.0 / (np.argmax(rel, axis=1) + 1.0), 0.0)


def average_precision(scores, qrels, threshold: int = 1) -> np.ndarray:
  return _ap(ranked_grades(scores, qrels), threshold)


def ndcg_at(scores, qrels, k: int) -> np.ndarray:
  return _ndcg(ranked_grades(scores, qrels), qrels, k)


def recall_at(scores, qrels, k: int, threshold: int = 1) -> np.ndarray:
  return _recall(ranked_grades(scores, qrels), k, threshold)


def reciprocal_rank_at(scores, qrels, k: int, threshold: int = 1
                       ) -> np.ndarray:
  return _rr(ranked_grades(scores, qrels), k, threshold)


def summary(scores: np.ndarray, qrels: np.ndarray, threshold: int
            ) -> dict[str, np.ndarray]:
  """Per-query AP, NDCG@10, Recall@100 and RR@10, in %, from one sort."""
  ranked = ranked_grades(scores, qrels)
  return {"map": 100 * _ap(ranked, threshold),
          "ndcg10": 100 * _ndcg(ranked, qrels, 10),
          "recall100": 100 * _recall(ranked, 100, threshold),
          "mrr10": 100 * _rr(ranked, 10, threshold)}

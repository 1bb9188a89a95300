"""BM25 as a term-weight matrix: a first-stage sparse retriever in numpy.

BM25 scores a query `q` (term counts `[V]`) against document `d` as

    score(q, d) = sum_t q_t * idf_t * tf_dt (k1 + 1) / (tf_dt + k1 (1 - b + b
                  |d| / avgdl)),

so with the document-side weights `W[d, t] = idf_t * tf_dt (k1 + 1) / (...)`
(`bm25_matrix`) every query is scored by one product `q @ W.T`: the
index a vector-space reformulator (LoL's differentiable PRF) writes its
query vectors against. A repeated query term counts once per occurrence,
as `rank_bm25.BM25Okapi.get_scores` loops over the query tokens.

`idf` (`idf_kind`):

* `"okapi"`: `rank_bm25.BM25Okapi`: `log(N - df + 0.5) - log(df + 0.5)`;
  a negative idf is replaced by `epsilon * mean(idf)` (its `epsilon=0.25`);
  its defaults `k1 = 1.5`, `b = 0.75`.
* `"lucene"`: Lucene / Pyserini: `log(1 + (N - df + 0.5) / (df + 0.5))`,
  always positive; Pyserini's defaults `k1 = 0.9`, `b = 0.4`. Lucene's
  length normalisation uses a lossy one-byte norm; ours is exact.

Terms absent from every document get idf like any other term of `df = 0`
(rank_bm25 only sees terms of its corpus; their weight never matters since
`tf = 0`).
"""

from __future__ import annotations

import numpy as np

IDF_KINDS = ("okapi", "lucene")


def idf(counts: np.ndarray, kind: str = "lucene",
        epsilon: float = 0.25) -> np.ndarray:
  """Inverse document frequency `[V]` of a term-count matrix `[N, V]`."""
  if kind not in IDF_KINDS:
    raise ValueError(f"bm25 idf kind {kind!r}; allowed {IDF_KINDS}")
  n = counts.shape[0]
  df = np.sum(counts > 0, axis=0).astype(np.float64)
  if kind == "lucene":
    return np.log1p((n - df + 0.5) / (df + 0.5))
  w = np.log(n - df + 0.5) - np.log(df + 0.5)
  seen = df > 0   # rank_bm25's average runs over the corpus's terms
  floor = epsilon * np.mean(w[seen]) if np.any(seen) else 0.0
  return np.where(w < 0, floor, w)


def bm25_matrix(counts: np.ndarray, k1: float = 0.9, b: float = 0.4,
                kind: str = "lucene", epsilon: float = 0.25) -> np.ndarray:
  """Document-side BM25 weights.

  Args:
    counts: `[N, V]` term counts of N documents.
    k1, b: BM25's saturation and length normalisation.
    kind: the idf (module docstring).
    epsilon: okapi's floor for negative idf, as a fraction of the mean idf.

  Returns:
    float32 `[N, V]`: `score(q, d) = q_counts @ W[d]`.
  """
  if k1 < 0 or not 0.0 <= b <= 1.0:
    raise ValueError(f"bm25 needs k1 >= 0 and 0 <= b <= 1; got k1={k1}, "
                     f"b={b}")
  counts = np.asarray(counts, np.float64)
  length = counts.sum(axis=1, keepdims=True)
  norm = k1 * (1.0 - b + b * length / max(float(length.mean()), 1e-12))
  tf = counts * (k1 + 1.0) / np.maximum(counts + norm, 1e-12)
  return (tf * idf(counts, kind, epsilon)[None]).astype(np.float32)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
  """int32 `[Q, k]` indices of the k highest scores of each row, best
  first; ties broken by the lower document index (a stable sort)."""
  order = np.argsort(-scores, axis=1, kind="stable")
  return order[:, :k].astype(np.int32)

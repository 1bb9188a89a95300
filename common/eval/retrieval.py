"""Retrieval evaluation of two-tower recommenders: Recall@K by slice.

Evaluator `retrieval_recall`: embeds the whole catalogue with the item tower
and the test queries with the query tower (the method's eval-mode
`predict`), scores every item by the dot product (cosine for unit
vectors), and reports for each test slice of `common.data.recsys.load`
(`all`, `head`, `tail` items by training popularity) and each `K` in
`config.eval.ks`: `recall<K>_<slice>` = % of test pairs whose item is among
the query's K highest-scoring items (no item is excluded; ties count
against the target).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from common.data import recsys
from common.eval import evaluators


def recall_at_k(query: np.ndarray, items: np.ndarray, targets: np.ndarray,
                ks: Sequence[int]) -> dict[int, float]:
  """% of rows whose target item ranks in the top K.

  Args:
    query: `[n, d]` query embeddings; items: `[I, d]` the catalogue's.
    targets: int `[n]`, each query's item.
    ks: cut-offs.

  Returns:
    `{K: recall in %}`; the rank of a target is the number of items with a
    score >= its own, minus one (ties count against it).
  """
  scores = np.asarray(query, np.float32) @ np.asarray(items, np.float32).T
  target = np.take_along_axis(scores, np.asarray(targets)[:, None], 1)
  rank = np.sum(scores >= target, axis=1) - 1                    # [n]
  return {k: 100.0 * float(np.mean(rank < k)) for k in ks}


def _embed(setup: Any, state: Any, key: str, feats: np.ndarray,
           out: str, chunk: int) -> np.ndarray:
  """`feats` `[n, F]` through one tower, in equal chunks (one compile)."""
  n = len(feats)
  padded = np.concatenate([feats, np.repeat(feats[-1:], -n % chunk, 0)])
  parts = [evaluators.predict(setup, state,
                              {"inputs": {key: padded[i:i + chunk]}}, (out,))
           [out] for i in range(0, len(padded), chunk)]
  return np.concatenate(parts)[:n]


@evaluators.register_evaluator("retrieval_recall")
def retrieval_recall(setup: Any, state: Any) -> dict[str, float]:
  """Recall@K over the catalogue, overall and on head / tail items."""
  data = recsys.load(setup.config)
  ks = tuple(int(k) for k in setup.config.eval.get("ks", (10, 50)))
  chunk = setup.config.train.eval_batch_size
  items = _embed(setup, state, "item", data.item_features, "item", chunk)
  queries = _embed(setup, state, "query", data.query_features, "query",
                   chunk)
  result = {}
  for name, (users, targets) in data.test.items():
    for k, r in recall_at_k(queries[users], items, targets, ks).items():
      result[f"recall{k}_{name}"] = r
  return result

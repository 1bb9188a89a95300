"""Evaluator `zero_shot_retrieval`: zero-shot retrieval and clustering of embeddings.

The metric-learning protocol (Song et al. 2016; ECAML's MATLAB evaluation)
on the held-out split, whose classes training never saw:

* `recall_at_<k>` for k in `eval.recall_ks` (default 1, 2, 4, 8): the share
  of queries whose k nearest other held-out examples (Euclidean distance
  of the model's `embedding`) include one of the query's class;
* `nmi`: normalised mutual information between the labels and a k-means
  clustering of the embeddings into as many clusters as classes
  (scikit-learn, 10 restarts, fixed seed).
"""

from __future__ import annotations

import collections
from typing import Any

import numpy as np
from sklearn import cluster as sk_cluster
from sklearn import metrics as sk_metrics

from common.core import sharding as sharding_lib
from common.eval import evaluators

RECALL_KS = (1, 2, 4, 8)


def recall_at_k(emb: np.ndarray, labels: np.ndarray,
                ks: tuple[int, ...] = RECALL_KS) -> dict[int, float]:
  """Recall@k of `emb [n, d]` with leave-one-out queries."""
  emb = emb.astype(np.float64)
  sq = np.sum(emb * emb, axis=1)
  dist = sq[:, None] + sq[None] - 2.0 * emb @ emb.T
  np.fill_diagonal(dist, np.inf)
  order = np.argsort(dist, axis=1)[:, :max(ks)]
  hit = labels[order] == labels[:, None]
  return {k: float(np.mean(hit[:, :k].any(axis=1))) for k in ks}


def nmi(emb: np.ndarray, labels: np.ndarray, seed: int = 0) -> float:
  """NMI of the labels and k-means (k = number of classes) of `emb`."""
  k = len(np.unique(labels))
  pred = sk_cluster.KMeans(k, n_init=10, random_state=seed).fit_predict(
      emb.astype(np.float64))
  return float(sk_metrics.normalized_mutual_info_score(labels, pred))


@evaluators.register_evaluator("zero_shot_retrieval")
def evaluate(setup: Any, state: Any) -> dict[str, float]:
  """Recall@k and NMI of the held-out split's embeddings."""
  parts = collections.defaultdict(list)
  for batch in setup.eval_batches():
    out = setup.eval_step(state, batch, setup.hparams,
                          output_keys=("embedding",))
    parts["emb"].append(sharding_lib.gather_to_host(out["embedding"]))
    parts["label"].append(sharding_lib.gather_to_host(batch["label"]))
    parts["mask"].append(sharding_lib.gather_to_host(batch["mask"]))
  keep = np.concatenate(parts["mask"]).astype(bool)
  emb = np.concatenate(parts["emb"])[keep]
  labels = np.concatenate(parts["label"])[keep]
  ks = tuple(setup.config.eval.get("recall_ks", RECALL_KS))
  out = {f"recall_at_{k}": v for k, v in recall_at_k(emb, labels, ks).items()}
  out["nmi"] = nmi(emb, labels)
  return out

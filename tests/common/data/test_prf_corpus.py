"""prf_corpus / bm25 / ranking metrics: BM25 by hand (rank_bm25's Okapi
and Lucene's idf), metrics vs sklearn, the corpus's labels and batches."""

from __future__ import annotations

import math

import jax
import ml_collections as mlc
import numpy as np
from sklearn import metrics as sk_metrics

from common.data import bm25
from common.data import prf_corpus
from common.eval import prf_retrieval
from common.eval import ranking_metrics as rm


def _okapi_by_hand(corpus, query, k1=1.5, b=0.75, eps=0.25):
  """rank_bm25.BM25Okapi.get_scores, written out term by term."""
  n = len(corpus)
  avgdl = sum(len(d) for d in corpus) / n
  vocab = sorted({t for d in corpus for t in d})
  df = {t: sum(t in d for d in corpus) for t in vocab}
  idf = {t: math.log(n - df[t] + 0.5) - math.log(df[t] + 0.5) for t in vocab}
  floor = eps * sum(idf.values()) / len(idf)
  idf = {t: (floor if v < 0 else v) for t, v in idf.items()}
  out = []
  for d in corpus:
    s = 0.0
    for q in query:   # repeated query terms count again
      tf = d.count(q)
      s += idf.get(q, 0.0) * tf * (k1 + 1) / (
          tf + k1 * (1 - b + b * len(d) / avgdl))
    out.append(s)
  return np.array(out)


def test_bm25_matches_rank_bm25_okapi_and_lucene_by_hand():
  corpus = [[0, 1, 1, 2], [1, 3], [0, 0, 4, 5, 1], [2, 2, 2], [1, 5]]
  counts = np.zeros((5, 6))
  for i, d in enumerate(corpus):
    for t in d:
      counts[i, t] += 1
  query = [1, 2, 2, 5]        # term 1 is in 4/5 docs: negative okapi idf
  q = np.bincount(query, minlength=6).astype(np.float64)
  w = bm25.bm25_matrix(counts, 1.5, 0.75, "okapi")
  np.testing.assert_allclose(w @ q, _okapi_by_hand(corpus, query), rtol=1e-5)
  # Lucene's idf: log(1 + (N - df + .5) / (df + .5)); doc 1 = [1, 3].
  wl = bm25.bm25_matrix(counts, 0.9, 0.4, "lucene")
  idf1 = math.log(1 + (5 - 4 + 0.5) / (4 + 0.5))
  want = idf1 * 1 * 1.9 / (1 + 0.9 * (0.6 + 0.4 * 2 / (16 / 5)))
  np.testing.assert_allclose(wl[1, 1], want, rtol=1e-5)
  np.testing.assert_array_equal(bm25.top_k(np.array([[1., 3, 3, 2]]), 3),
                                [[1, 2, 3]])


def test_ranking_metrics_match_sklearn_and_trec_definitions():
  rng = np.random.default_rng(0)
  scores = rng.normal(size=(6, 40))
  qrels = rng.choice(3, size=(6, 40), p=[0.7, 0.2, 0.1])
  qrels[:, 0] = 2
  ap = rm.average_precision(scores, qrels, 1)
  want = [sk_metrics.average_precision_score(qrels[i] >= 1, scores[i])
          for i in range(6)]
  np.testing.assert_allclose(ap, want, rtol=1e-6)
  nd = rm.ndcg_at(scores, qrels, 10)
  want = [sk_metrics.ndcg_score(qrels[i:i + 1], scores[i:i + 1], k=10)
          for i in range(6)]
  np.testing.assert_allclose(nd, want, rtol=1e-6)
  s = np.array([[0.9, 0.8, 0.7, 0.6]])
  g = np.array([[0, 2, 0, 2]])
  np.testing.assert_allclose(rm.reciprocal_rank_at(s, g, 10, 2), [0.5])
  np.testing.assert_allclose(rm.recall_at(s, g, 2, 2), [0.5])
  np.testing.assert_allclose(rm.average_precision(s, g, 2), [(1/2 + 2/4) / 2])
  assert prf_retrieval.monotonicity_violations(
      np.array([[1., 2, 1.5], [1, 1, 1]])) == 25.0


def test_corpus_labels_runs_and_batches():
  kw = dict(prf_corpus.DEFAULTS, vocab_size=120, num_topics=4, subtopics=2,
            topic_words=15, subtopic_words=6, stop_words=10, num_docs=80,
            doc_len=20, num_train=30, num_test=10, pool=20, fb_pool=6,
            max_feedback=3, num_candidates=8, hard_negatives=3)
  config = mlc.ConfigDict(dict(data=dict(name="prf_corpus", kwargs=kw)))
  data = prf_corpus.load(config)
  qrels = data.qrels(data.test)
  assert np.all((qrels == 2) == (data.test.subtopic[:, None]
                                 == data.doc_subtopic[None]))
  assert np.all((qrels >= 1) == (data.test.subtopic[:, None] // 2
                                 == data.doc_subtopic[None] // 2))
  np.testing.assert_array_equal(
      data.test.run, bm25.top_k(data.test.counts @ data.index.T, 20))
  gen = prf_corpus.prf_corpus(config)
  batch = jax.tree.map(np.asarray, jax.jit(gen.sample, static_argnums=1)(
      jax.random.PRNGKey(0), 16))
  assert batch["cand"].shape == (16, 8, 120)
  assert batch["inputs"]["fb"].shape == (16, 3, 120)
  # Column 0 is a grade-2 document; masked candidates are the other ones.
  rows = {tuple(r): i for i, r in enumerate(data.index)}
  ids = np.array([[rows[tuple(r)] for r in c] for c in batch["cand"]])
  sub = np.array([data.train.subtopic[np.flatnonzero(np.all(
      data.train.counts == batch["inputs"]["query"][i], 1))[0]]
                  for i in range(16)])
  grade = prf_corpus.relevance(sub[:, None], data.doc_subtopic[ids], 2)
  assert np.all(grade[:, 0] == 2)
  np.testing.assert_array_equal(batch["cand_mask"][:, 1:], grade[:, 1:] < 2)

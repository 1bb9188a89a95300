"""A generated retrieval corpus with topics, graded relevance and a BM25
first stage: the data of pseudo-relevance-feedback (PRF) studies (LoL).

Generator `prf_corpus` (settings in `config.data.kwargs`, defaults in
`DEFAULTS`). A fixed world is drawn once from `data_seed` (numpy, host):

* a background unigram distribution, Zipf(`zipf_exponent`) over a random
  order of the `vocab_size` terms;
* `num_topics` topics, each with `subtopics` subtopics; a topic owns
  `topic_words` terms and a subtopic `subtopic_words` terms, drawn at
  random from the vocabulary outside its `stop_words` most frequent
  background terms, so topics share terms (the source of query drift),
  with Dirichlet(1) weights;
* `num_docs` documents, each of one subtopic (uniform), `Poisson(doc_len)`
  tokens, each from the background / topic / subtopic distribution with
  probabilities `mix` (normalised);
* queries: a subtopic, then `Poisson(query_len - 1) + 1` tokens from its
  topic and subtopic distributions (`query_mix`) and the background (the
  rest): short, and sharing few terms with most relevant documents;
* graded relevance: 2 = the query's subtopic, 1 = its topic, 0 otherwise
  (a function of the labels: `relevance(query_sub, doc_sub, subtopics)`);
* `num_train` training and `num_test` test queries (fresh draws, the same
  subtopics), kept only if some document has relevance 2;
* the BM25 index `W [N, V]` (`common.data.bm25`, `bm25_k1`, `bm25_b`,
  Lucene idf) and each query's first-stage run, its `pool` best documents.

A training batch (`sample(rng, n)`, a pure function of the key): `n`
training queries with replacement, `{"inputs": {"query": [n, V] term
counts, "fb": [n, K, V] BM25 rows of K = max_feedback feedback documents,
"fb_mask": [n, K] all true}, "fb_rel": [n, K] their grades, "cand": [n, C,
V] the candidates of the reformulation loss: column 0 a grade-2 document,
then `hard_negatives` documents drawn from the query's first-stage run
and the rest uniform over the corpus, "cand_mask": [n, C] (false on the
other grade-2 candidates, as the official loss masks the other positives;
grade-1 documents are negatives: the evaluation's relevance is grade 2)}`. The feedback documents are
K distinct documents of the first-stage top `fb_pool`, in random order
when `shuffle_feedback` (the official `--shuffle_psgs`), else the top K.

`load(config) -> PRFCorpus` (cached) gives evaluators the index, the test
queries, their runs and the labels.
"""

from __future__ import annotations

import dataclasses
import os
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from common import config as config_lib
from common.data import bm25
from common.data import procedural

DEFAULTS = dict(vocab_size=1000, num_topics=50, subtopics=4, topic_words=60,
                subtopic_words=20, stop_words=50, zipf_exponent=1.0,
                num_docs=3000, doc_len=60, mix=(0.6, 0.25, 0.15),
                query_len=3, query_mix=(0.5, 0.4), num_train=2000,
                num_test=400, pool=100, bm25_k1=0.9, bm25_b=0.4,
                max_feedback=5, fb_pool=10, shuffle_feedback=True,
                num_candidates=32, hard_negatives=16, data_seed=0)
RULES = {
    "vocab_size": config_lib.at_least(16, integer=True),
    "num_topics": config_lib.at_least(2, integer=True),
    "subtopics": config_lib.at_least(1, integer=True),
    "topic_words": config_lib.at_least(1, integer=True),
    "subtopic_words": config_lib.at_least(1, integer=True),
    "stop_words": config_lib.at_least(0, integer=True),
    "zipf_exponent": config_lib.at_least(0.0),
    "num_docs": config_lib.at_least(8, integer=True),
    "doc_len": config_lib.greater_than(0.0),
    "mix": config_lib.each(config_lib.at_least(0.0)),
    "query_len": config_lib.at_least(1.0),
    "query_mix": config_lib.each(config_lib.at_least(0.0)),
    "num_train": config_lib.at_least(1, integer=True),
    "num_test": config_lib.at_least(1, integer=True),
    "pool": config_lib.at_least(1, integer=True),
    "bm25_k1": config_lib.at_least(0.0),
    "bm25_b": config_lib.between(0.0, 1.0),
    "max_feedback": config_lib.at_least(1, integer=True),
    "fb_pool": config_lib.at_least(1, integer=True),
    "num_candidates": config_lib.at_least(2, integer=True),
    "hard_negatives": config_lib.at_least(0, integer=True),
    "data_seed": config_lib.at_least(0, integer=True),
}


@dataclasses.dataclass(frozen=True)
class Queries:
  """Queries with their labels and first-stage runs (host arrays).

  Attributes:
    counts: float32 `[Q, V]` term counts.
    subtopic: int32 `[Q]` (global subtopic id; topic = subtopic // S).
    run: int32 `[Q, pool]` BM25's best documents, best first.
  """
  counts: np.ndarray
  subtopic: np.ndarray
  run: np.ndarray


@dataclasses.dataclass(frozen=True)
class PRFCorpus:
  """The corpus, its BM25 index and the queries.

  Attributes:
    doc_counts: float32 `[N, V]` term counts.
    index: float32 `[N, V]` BM25 document weights (`q @ index.T` = BM25).
    doc_subtopic: int32 `[N]`.
    subtopics: subtopics per topic.
    train, test: the queries.
  """
  doc_counts: np.ndarray
  index: np.ndarray
  doc_subtopic: np.ndarray
  subtopics: int
  train: Queries
  test: Queries

  def __hash__(self):
    return id(self)

  def qrels(self, queries: Queries) -> np.ndarray:
    """int32 `[Q, N]` graded relevance of every document."""
    return relevance(queries.subtopic[:, None], self.doc_subtopic[None],
                     self.subtopics)


def relevance(query_sub, doc_sub, subtopics: int):
  """Grade 2 (same subtopic), 1 (same topic), 0; numpy or jnp arrays."""
  same_topic = (query_sub // subtopics) == (doc_sub // subtopics)
  grade = same_topic.astype(np.int32) + (query_sub == doc_sub).astype(
      np.int32)
  return grade


def _words(rng, vocab: int, stop: int, n: int, order: np.ndarray):
  """`n` content terms (outside the `stop` most frequent) and weights."""
  words = rng.choice(order[stop:], size=min(n, vocab - stop), replace=False)
  return words, rng.dirichlet(np.ones(len(words)))


def _sample_tokens(rng, dists: list[np.ndarray], mix: np.ndarray,
                   length: int, vocab: int) -> np.ndarray:
  """Term counts `[V]` of `length` tokens from a mixture of unigrams."""
  comp = rng.choice(len(dists), size=length, p=mix)
  out = np.zeros(vocab, np.float32)
  for c, dist in enumerate(dists):
    m = int(np.sum(comp == c))
    if m:
      out += np.bincount(rng.choice(vocab, size=m, p=dist),
                         minlength=vocab).astype(np.float32)
  return out


@functools.lru_cache(maxsize=4)
def _generate(vocab_size, num_topics, subtopics, topic_words, subtopic_words,
              stop_words, zipf_exponent, num_docs, doc_len, mix, query_len,
              query_mix, num_train, num_test, pool, bm25_k1, bm25_b,
              max_feedback, fb_pool, shuffle_feedback, num_candidates,
              hard_negatives, data_seed) -> PRFCorpus:
  del max_feedback, fb_pool, shuffle_feedback, num_candidates
  del hard_negatives   # sampling settings (see `generator`)
  if stop_words >= vocab_size:
    raise ValueError(f"prf_corpus: stop_words={stop_words} must be below "
                     f"vocab_size={vocab_size}")
  if len(mix) != 3 or len(query_mix) != 2:
    raise ValueError("prf_corpus: mix needs 3 weights (background, topic, "
                     "subtopic) and query_mix 2 (topic, subtopic); got "
                     f"{mix!r}, {query_mix!r}")
  rng = np.random.default_rng(data_seed)
  order = rng.permutation(vocab_size)
  background = np.zeros(vocab_size)
  background[order] = np.arange(1, vocab_size + 1) ** -float(zipf_exponent)
  background /= background.sum()

  def dist(words, weights):
    d = np.zeros(vocab_size)
    d[words] = weights
    return d

  topic = [dist(*_words(rng, vocab_size, stop_words, topic_words, order))
           for _ in range(num_topics)]
  sub = [dist(*_words(rng, vocab_size, stop_words, subtopic_words, order))
         for _ in range(num_topics * subtopics)]
  mix = np.asarray(mix, np.float64) / np.sum(mix)
  doc_sub = rng.integers(0, num_topics * subtopics, num_docs).astype(np.int32)
  docs = np.stack([
      _sample_tokens(rng, [background, topic[s // subtopics], sub[s]], mix,
                     max(1, rng.poisson(doc_len)), vocab_size)
      for s in doc_sub])
  index = bm25.bm25_matrix(docs, bm25_k1, bm25_b, "lucene")
  has_rel = np.bincount(doc_sub, minlength=num_topics * subtopics) > 0
  q_mix = np.asarray(query_mix, np.float64)
  qmix = np.concatenate([[max(0.0, 1.0 - q_mix.sum())], q_mix])
  qmix = qmix / qmix.sum()

  def queries(n: int) -> Queries:
    subs = rng.choice(np.flatnonzero(has_rel), size=n).astype(np.int32)
    counts = np.stack([
        _sample_tokens(rng, [background, topic[s // subtopics], sub[s]],
                       qmix, 1 + rng.poisson(query_len - 1.0), vocab_size)
        for s in subs])
    run = bm25.top_k(counts @ index.T, min(pool, num_docs))
    return Queries(counts, subs, run)

  return PRFCorpus(docs, index, doc_sub, subtopics, queries(num_train),
                   queries(num_test))


def load(config: Any) -> PRFCorpus:
  """The `PRFCorpus` of `config.data` (cached per settings)."""
  kw = procedural.settings(config, DEFAULTS, RULES)
  kw["mix"], kw["query_mix"] = tuple(kw["mix"]), tuple(kw["query_mix"])
  return _generate(*(kw[k] for k in DEFAULTS))


def feedback_settings(config: Any) -> dict[str, Any]:
  kw = procedural.settings(config, DEFAULTS, RULES)
  if kw["max_feedback"] > kw["fb_pool"] or kw["fb_pool"] > kw["pool"]:
    raise ValueError(
        f"prf_corpus needs max_feedback <= fb_pool <= pool; got "
        f"{kw['max_feedback']}, {kw['fb_pool']}, {kw['pool']}")
  if kw["hard_negatives"] > kw["num_candidates"] - 1:
    raise ValueError(
        f"prf_corpus: hard_negatives={kw['hard_negatives']} leaves no room "
        f"in num_candidates={kw['num_candidates']} (one is the positive)")
  return kw


def generator(data: PRFCorpus, max_feedback: int, fb_pool: int,
              shuffle: bool, num_candidates: int, hard_negatives: int,
              ) -> procedural.Generator:
  """Training batches of `data` (see the module docstring)."""
  index = jnp.asarray(data.index)
  doc_sub = jnp.asarray(data.doc_subtopic)
  q_counts = jnp.asarray(data.train.counts)
  q_sub = jnp.asarray(data.train.subtopic)
  runs = jnp.asarray(data.train.run)
  s = data.subtopics
  num_docs, k, c = index.shape[0], max_feedback, num_candidates

  def sample(rng, n):
    kq, kf, kp, kh, kr = jax.random.split(rng, 5)
    j = jax.random.randint(kq, (n,), 0, q_counts.shape[0])
    run = runs[j]                                           # [n, pool]
    if shuffle:
      keys = jax.random.split(kf, n)
      pick = jax.vmap(lambda key: jax.random.permutation(key, fb_pool)[:k])(
          keys)
    else:
      pick = jnp.broadcast_to(jnp.arange(k), (n, k))
    fb = jnp.take_along_axis(run, pick, 1)                  # [n, K]
    sub = q_sub[j][:, None]
    # A grade-2 positive: Gumbel-max over the corpus restricted to it.
    g = jax.random.gumbel(kp, (n, num_docs))
    pos = jnp.argmax(jnp.where(doc_sub[None] == sub, g, -jnp.inf), 1)
    hard = jnp.take_along_axis(
        run, jax.random.randint(kh, (n, hard_negatives), 0, run.shape[1]), 1)
    rand = jax.random.randint(kr, (n, c - 1 - hard_negatives), 0, num_docs)
    cand = jnp.concatenate([pos[:, None], hard, rand], 1)   # [n, C]
    grade = relevance(sub, doc_sub[cand], s)
    cand_mask = (grade < 2).at[:, 0].set(True)
    return {"inputs": {"query": q_counts[j], "fb": index[fb],
                       "fb_mask": jnp.ones((n, k), bool)},
            "fb_rel": relevance(sub, doc_sub[fb], s),
            "cand": index[cand], "cand_mask": cand_mask}

  return procedural.Generator(sample=sample,
                              example=procedural.example_from(sample),
                              epoch_size=int(data.train.counts.shape[0]))


@procedural.register_generator("prf_corpus")
def prf_corpus(config: Any) -> procedural.Generator:
  kw = feedback_settings(config)
  return generator(load(config), kw["max_feedback"], kw["fb_pool"],
                   bool(kw["shuffle_feedback"]), kw["num_candidates"],
                   kw["hard_negatives"])


@procedural.register_generator("prf_msmarco")
def prf_msmarco(config: Any) -> procedural.Generator:
  """The full-scale data of LoL (`experiments/lol/config.py:msmarco`): MS
  MARCO passage with the official first-stage runs and index matrices
  under `config.data.data_dir` (zycdev/LoL README). Not read here: a
  missing folder is a FileNotFoundError, a present one NotImplementedError
  (a run at that scale needs a BERT reformulator and a sparse index)."""
  root = os.path.join(config.data.data_dir or "", "msmarco-passage")
  if not config.data.data_dir or not os.path.isdir(root):
    raise FileNotFoundError(
        f"generator prf_msmarco reads the official LoL data (corpus.tsv, "
        f"run/, qrels.*.txt, matrix/*.pt) from <data_dir>/msmarco-passage; "
        f"{root!r} does not exist (config.data.data_dir="
        f"{config.data.data_dir!r})")
  raise NotImplementedError(
      f"generator prf_msmarco: found {root!r}, but reading the official "
      "matrices and a BERT-size reformulator are not implemented in this "
      "repo; see third_party_configs/lol/README.md")

"""Recommendation data: a generated catalogue with a power-law item
popularity, and the same layout read from MovieLens (TFDS).

Generator `synthetic_recsys` (settings in `config.data.kwargs`, defaults in
`DEFAULTS`). A fixed world is drawn once from `data_seed` (numpy, host):

* `num_topics` topic centres `c_t ~ N(0, I_dim)`; `num_creators` creators,
  creator `k` in topic `k % num_topics` with an offset `o_k ~ N(0,
  creator_scale^2 I)`; item `i`: topic `z_i` uniform, a creator of its topic,
  latent `e_i = c_z + o_k + item_scale * eps_i`;
* six categorical item features (correlated through the latents):
  `id` (vocab I), `category` (= z_i, replaced by a uniform value with
  probability `feature_noise`), `subcategory` (z_i * 4 + creator % 4),
  `creator`, `style` (uniform, `num_styles`, unrelated to preferences) and
  `style2` (= style, or uniform with probability `feature_noise`);
* popularity `p_i ~ rank_i^-zipf_exponent` over a random ranking;
* users: a favourite topic `t_u`, latent `w_u = c_t + user_scale * eta`;
  query features `(user id, segment)`, segment = t_u (noised like category);
* interactions: item `i ~ p`, then user `u ~ softmax_u(affinity *
  cos(w_u, e_i))`. `num_train` pairs form the training set (fixed); the
  test pairs are fresh draws: `all` (natural distribution), `head` / `tail`
  (item drawn from `p` restricted to the `head_fraction` most / the
  `tail_fraction` least popular items by training count).

A batch (`sample(rng, n)`, pure function of the key) draws `n` training
pairs with replacement: `{"inputs": {"query": [n, 2], "item": [n, 6]},
"item_log_q": [n]` (log of the item's share of the training pairs: the
logQ correction), `"ssl_item": [n, 6]` (items uniform over the catalogue:
the paper's SSL item distribution), `"ssl_item_batch": [n, 6]` (= the main
batch's items)}`.

`load(config) -> RecsysData` (cached) gives evaluators the catalogue and the
test pairs (`common/eval/retrieval.py`). Generator `movielens_recsys` builds
the same `RecsysData` from TFDS `movielens/1m-ratings` under
`config.data.data_dir` (never downloaded): item features (movie id, first
and second genre, release decade), query features (user id, gender, age
bucket, occupation), a random `test_fraction` of ratings held out.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from common import config as config_lib
from common.data import procedural

ITEM_FEATURES = ("id", "category", "subcategory", "creator", "style",
                 "style2")
SLICES = ("all", "head", "tail")
DEFAULTS = dict(num_items=2000, num_users=500, num_topics=40,
                num_creators=200, num_styles=6, dim=8, creator_scale=0.5,
                item_scale=0.5, user_scale=0.3, affinity=10.0,
                feature_noise=0.1, zipf_exponent=1.0, num_train=20000,
                num_test=2000, head_fraction=0.2, tail_fraction=0.5,
                data_seed=0)
RULES = {
    "num_items": config_lib.at_least(8, integer=True),
    "num_users": config_lib.at_least(2, integer=True),
    "num_topics": config_lib.at_least(1, integer=True),
    "num_creators": config_lib.at_least(1, integer=True),
    "num_styles": config_lib.at_least(1, integer=True),
    "dim": config_lib.at_least(1, integer=True),
    "feature_noise": config_lib.between(0.0, 1.0),
    "zipf_exponent": config_lib.at_least(0.0),
    "num_train": config_lib.at_least(1, integer=True),
    "num_test": config_lib.at_least(1, integer=True),
    "head_fraction": config_lib.between(0.0, 1.0),
    "tail_fraction": config_lib.between(0.0, 1.0),
    "data_seed": config_lib.at_least(0, integer=True),
}
ML_DEFAULTS = dict(name="movielens/1m-ratings", test_fraction=0.1,
                   head_fraction=0.2, tail_fraction=0.5, num_test=5000,
                   data_seed=0)


@dataclasses.dataclass(frozen=True)
class RecsysData:
  """A catalogue, its users, training pairs and test pairs (host arrays).

  Attributes:
    item_features: int32 `[I, F]`.
    query_features: int32 `[U, Fq]` (one row per user).
    item_vocab, query_vocab: vocabulary size of each feature.
    train_users, train_items: int32 `[N]`, the training pairs.
    item_counts: int64 `[I]`, training pairs per item.
    test: slice name -> `(users [n], items [n])`.
    head, tail: bool `[I]`, the popularity slices (by training count).
  """
  item_features: np.ndarray
  query_features: np.ndarray
  item_vocab: tuple[int, ...]
  query_vocab: tuple[int, ...]
  train_users: np.ndarray
  train_items: np.ndarray
  item_counts: np.ndarray
  test: dict[str, tuple[np.ndarray, np.ndarray]]
  head: np.ndarray
  tail: np.ndarray


def popularity_slices(counts: np.ndarray, tiebreak: np.ndarray,
                      head_fraction: float, tail_fraction: float
                      ) -> tuple[np.ndarray, np.ndarray]:
  """Bool `[I]` masks of the most / least popular items by `counts`."""
  order = np.lexsort((-tiebreak, -counts))        # most popular first
  n = len(counts)
  head, tail = np.zeros(n, bool), np.zeros(n, bool)
  head[order[:int(round(head_fraction * n))]] = True
  tail[order[n - int(round(tail_fraction * n)):]] = True
  return head, tail


def _draw_users(rng, logits: np.ndarray, items: np.ndarray) -> np.ndarray:
  """One user per item from `softmax(logits[:, item])` (Gumbel max)."""
  g = rng.gumbel(size=(len(items), logits.shape[0]))
  return np.argmax(logits[:, items].T + g, axis=1).astype(np.int32)


@functools.lru_cache(maxsize=8)
def _generate(items: int, users: int, topics: int, creators: int,
              styles: int, dim: int, creator_scale: float, item_scale: float,
              user_scale: float, affinity: float, noise: float, zipf: float,
              num_train: int, num_test: int, head_fraction: float,
              tail_fraction: float, seed: int) -> RecsysData:
  rng = np.random.default_rng(seed)
  centres = rng.normal(size=(topics, dim))
  creator_topic = np.arange(creators) % topics
  offsets = creator_scale * rng.normal(size=(creators, dim))
  topic = rng.integers(0, topics, items)
  # A creator of the item's topic (topics without creators get any).
  creator = np.array([rng.choice(np.flatnonzero(creator_topic == t))
                      if np.any(creator_topic == t) else
                      rng.integers(0, creators) for t in topic])
  latent = (centres[topic] + offsets[creator]
            + item_scale * rng.normal(size=(items, dim)))
  noisy = lambda x, v: np.where(rng.random(len(x)) < noise,
                                rng.integers(0, v, len(x)), x)
  style = rng.integers(0, styles, items)
  feats = np.stack([np.arange(items), noisy(topic, topics),
                    topic * 4 + creator % 4, creator, style,
                    noisy(style, styles)], 1).astype(np.int32)
  vocab = (items, topics, topics * 4, creators, styles, styles)
  ranks = rng.permutation(items) + 1
  p = ranks.astype(np.float64) ** -zipf
  p /= p.sum()
  fav = rng.integers(0, topics, users)
  w = centres[fav] + user_scale * rng.normal(size=(users, dim))
  cos = ((w / np.linalg.norm(w, axis=1, keepdims=True))
         @ (latent / np.linalg.norm(latent, axis=1, keepdims=True)).T)
  logits = affinity * cos                                   # [U, I]
  qfeats = np.stack([np.arange(users), noisy(fav, topics)], 1).astype(
      np.int32)
  train_items = rng.choice(items, num_train, p=p).astype(np.int32)
  train_users = _draw_users(rng, logits, train_items)
  counts = np.bincount(train_items, minlength=items)
  head, tail = popularity_slices(counts, p, head_fraction, tail_fraction)
  test = {}
  for name, keep in (("all", np.ones(items, bool)), ("head", head),
                     ("tail", tail)):
    q = np.where(keep, p, 0.0)
    it = rng.choice(items, num_test, p=q / q.sum()).astype(np.int32)
    test[name] = (_draw_users(rng, logits, it), it)
  return RecsysData(feats, qfeats, vocab, (users, topics), train_users,
                    train_items, counts, test, head, tail)


def _movielens(name: str, data_dir: str, test_fraction: float,
               num_test: int, head_fraction: float, tail_fraction: float,
               seed: int) -> RecsysData:
  """MovieLens ratings as implicit feedback (see the module docstring)."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  missing = (f"generator movielens_recsys reads TFDS {name!r} (prepared, "
             f"never downloaded here) from config.data.data_dir="
             f"{data_dir!r}")
  if not data_dir:
    raise FileNotFoundError(missing + ", which is empty")
  try:
    rows = tfds.as_numpy(tfds.load(name, split="train", data_dir=data_dir,
                                   download=False, batch_size=-1))
  except Exception as e:  # pylint: disable=broad-except
    if "not found" in str(e).lower() or "DatasetNotFound" in type(e).__name__:
      raise FileNotFoundError(f"{missing}: not there ({e})") from e
    raise
  return from_ratings(rows, test_fraction, num_test, head_fraction,
                      tail_fraction, seed)


def from_ratings(rows: dict[str, np.ndarray], test_fraction: float,
                 num_test: int, head_fraction: float, tail_fraction: float,
                 seed: int) -> RecsysData:
  """`RecsysData` of MovieLens-style rating columns (TFDS feature names)."""
  _, movie = np.unique(rows["movie_id"], return_inverse=True)
  _, user = np.unique(rows["user_id"], return_inverse=True)
  items, users = movie.max() + 1, user.max() + 1
  genres = rows["movie_genres"]                    # ragged: [n] of arrays
  first = np.array([g[0] if len(g) else 0 for g in genres])
  second = np.array([g[1] if len(g) > 1 else g[0] if len(g) else 0
                     for g in genres])
  years = np.array([int(m.group(1)) if (m := re.search(
      rb"\((\d{4})\)\s*$", t)) else 1900 for t in rows["movie_title"]])
  decade = np.clip((years - 1900) // 10, 0, 12)
  n_genre = int(max(first.max(), second.max())) + 1
  item_feats = np.zeros((items, 4), np.int32)
  item_feats[movie] = np.stack([movie, first, second, decade], 1)
  q = [np.asarray(rows[k]).astype(np.int64) for k in (
      "user_gender", "bucketized_user_age", "user_occupation_label")]
  q = [np.unique(v, return_inverse=True)[1] for v in q]
  query_feats = np.zeros((users, 4), np.int32)
  query_feats[user] = np.stack([user, *q], 1)
  rng = np.random.default_rng(seed)
  is_test = rng.random(len(movie)) < test_fraction
  counts = np.bincount(movie[~is_test], minlength=items)
  head, tail = popularity_slices(counts, np.zeros(items), head_fraction,
                                 tail_fraction)
  test = {}
  for name, keep in (("all", None), ("head", head), ("tail", tail)):
    idx = np.flatnonzero(is_test if keep is None else is_test & keep[movie])
    idx = rng.permutation(idx)[:num_test]
    test[name] = (user[idx].astype(np.int32), movie[idx].astype(np.int32))
  return RecsysData(
      item_feats, query_feats, (items, n_genre, n_genre, 13),
      (users, *(int(v.max()) + 1 for v in q)),
      user[~is_test].astype(np.int32), movie[~is_test].astype(np.int32),
      counts, test, head, tail)


def load(config: Any) -> RecsysData:
  """The `RecsysData` of `config.data` (cached per settings)."""
  if config.data.name == "movielens_recsys":
    kw = procedural.settings(config, ML_DEFAULTS)
    return _load_movielens(kw["name"], config.data.data_dir,
                           float(kw["test_fraction"]), int(kw["num_test"]),
                           float(kw["head_fraction"]),
                           float(kw["tail_fraction"]), int(kw["data_seed"]))
  kw = procedural.settings(config, DEFAULTS, RULES)
  return _generate(*(kw[k] for k in DEFAULTS))


_load_movielens = functools.lru_cache(maxsize=2)(_movielens)


def generator(data: RecsysData) -> procedural.Generator:
  """Training batches of `data` (see the module docstring)."""
  item_feats = jnp.asarray(data.item_features)
  query_feats = jnp.asarray(data.query_features)
  users, items = jnp.asarray(data.train_users), jnp.asarray(data.train_items)
  log_q = jnp.asarray(np.log(np.maximum(data.item_counts, 1)
                             / len(data.train_items)), jnp.float32)

  def sample(rng, n):
    k_pair, k_ssl = jax.random.split(rng)
    j = jax.random.randint(k_pair, (n,), 0, users.shape[0])
    ssl = jax.random.randint(k_ssl, (n,), 0, item_feats.shape[0])
    it = items[j]
    return {"inputs": {"query": query_feats[users[j]],
                       "item": item_feats[it]},
            "item_log_q": log_q[it], "ssl_item": item_feats[ssl],
            "ssl_item_batch": item_feats[it]}

  return procedural.Generator(sample=sample,
                              example=procedural.example_from(sample),
                              epoch_size=len(data.train_items))


@procedural.register_generator("synthetic_recsys")
def synthetic_recsys(config: Any) -> procedural.Generator:
  return generator(load(config))


@procedural.register_generator("movielens_recsys")
def movielens_recsys(config: Any) -> procedural.Generator:
  return generator(load(config))

"""ssl_recsys: MI matrix vs sklearn, masks, losses, alpha = 0, no retrace."""

from __future__ import annotations

import functools

import chex
import jax
import jax.test_util  # pylint: disable=unused-import
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import metrics as sk_metrics

from algos.recsys import ssl_recsys
from algos.recsys import two_tower
from common.core import method as method_lib
from common.data import recsys
from common.eval import retrieval

VOCAB = (30, 5, 4, 3)


def _feats(n=400, seed=0):
  rng = np.random.default_rng(seed)
  a = rng.integers(0, 30, n)
  b = np.where(rng.random(n) < 0.8, a % 5, rng.integers(0, 5, n))
  c = np.where(rng.random(n) < 0.5, b % 4, rng.integers(0, 4, n))
  d = rng.integers(0, 3, n)
  return np.stack([a, b, c, d], 1).astype(np.int32)


def test_mi_matrix_matches_sklearn():
  feats = _feats()
  mi = np.asarray(jax.jit(ssl_recsys.feature_mi_matrix, static_argnums=1)(
      feats, VOCAB))
  want = np.array([[sk_metrics.mutual_info_score(feats[:, f], feats[:, g])
                    for g in range(4)] for f in range(4)])
  np.testing.assert_allclose(mi, want, atol=2e-5)


def test_feature_masks_count_and_cfm_takes_top_mi():
  mi = jnp.asarray([[0., 5., 1., 3., 0.],
                    [5., 0., 2., 1., 0.],
                    [1., 2., 0., 4., 9.],
                    [3., 1., 4., 0., 0.],
                    [0., 0., 9., 0., 0.]])

  @jax.jit
  def masks(rng):
    k1, k2 = jax.random.split(rng)
    return (ssl_recsys.feature_masks(k1, "cfm", mi, 64, 5),
            ssl_recsys.feature_masks(k2, "rfm", mi, 64, 5),
            jax.random.randint(k1, (64,), 0, 5))
  cfm, rfm, seed = (np.asarray(x) for x in masks(jax.random.PRNGKey(3)))
  assert (cfm.sum(1) == 2).all() and (rfm.sum(1) == 2).all()
  top = {0: 1, 1: 0, 2: 4, 3: 2, 4: 2}      # seed -> highest-MI partner
  for row, s in zip(cfm, seed):
    assert set(np.flatnonzero(row)) == {s, top[s]}
  assert len({tuple(r) for r in rfm}) > 3    # random patterns


def test_losses_are_infonce_and_differentiable():
  rng = np.random.default_rng(0)
  q, v = (jnp.asarray(rng.normal(size=(4, 3)), jnp.float32) for _ in "ab")
  log_q = jnp.log(jnp.asarray([0.1, 0.2, 0.3, 0.4]))
  got = ssl_recsys.in_batch_softmax_loss(q, v, log_q, 0.5, 1.0)
  logits = np.asarray(q @ v.T) / 0.5 - np.log([0.1, 0.2, 0.3, 0.4])[None]
  want = -np.mean(np.diag(logits) - np.log(np.exp(logits).sum(1)))
  np.testing.assert_allclose(got, want, rtol=1e-5)
  np.testing.assert_allclose(ssl_recsys.ssl_contrastive_loss(q, v, 0.5),
                             ssl_recsys.in_batch_softmax_loss(
                                 q, v, log_q, 0.5, 0.0), rtol=1e-6)
  jax.test_util.check_grads(jax.jit(lambda a, b: ssl_recsys.
                                    ssl_contrastive_loss(a, b, 0.5)),
                            (q, v), order=1, modes=("rev",), atol=1e-2,
                            rtol=1e-2)


@functools.cache
def _step():
  """One jitted loss of the method (masking static, hparams traced)."""
  model = two_tower.TwoTower(item_vocab=VOCAB, query_vocab=(7, 2),
                             embed_dim=4, hidden=(8,), out_dim=4)
  rng = np.random.default_rng(1)
  feats = _feats(16)
  batch = {"inputs": {"query": np.stack([rng.integers(0, 7, 16),
                                         rng.integers(0, 2, 16)], 1),
                      "item": feats},
           "item_log_q": np.log(rng.uniform(0.01, 0.1, 16)),
           "ssl_item": _feats(16, seed=2), "ssl_item_batch": feats}
  method = ssl_recsys.make({"masking": "cfm"})
  shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0),
                          batch["inputs"])["params"]
  params = jax.tree.map(lambda s: jnp.asarray(0.3 * rng.normal(
      size=s.shape), jnp.float32), shapes)
  mi = jnp.asarray(np.random.default_rng(3).random((4, 4)), jnp.float32)

  @chex.assert_max_traces(n=1)   # hyperparameters are traced
  def loss(hp):
    ctx = method_lib.StepContext(
        model=model, run=None, step=jnp.zeros((), jnp.int32),
        inputs=batch["inputs"], model_state={}, trainable=None,
        rng_model=jax.random.PRNGKey(0), preprocess=None, normalize=None)
    out = method.apply(hp, ctx, params, {"mi": mi}, batch,
                                 jax.random.PRNGKey(5))
    return out[0], out[1].metrics
  return jax.jit(loss)


def _hp(alpha):
  return {k: jnp.float32(v) for k, v in dict(
      alpha=alpha, tau=0.1, ssl_tau=0.2, logq_weight=1.0).items()}


def test_alpha_zero_is_the_base_loss_and_alpha_does_not_retrace():
  step = _step()
  zero, m0 = step(_hp(0.0))
  half, m1 = step(_hp(0.5))                 # no retrace (assert_max_traces)
  # alpha = 0: exactly the retrieval loss (masking="none" returns it alone).
  assert float(zero) == float(m0["main_loss"])
  np.testing.assert_allclose(half, m1["main_loss"] + 0.5 * m1["ssl_loss"],
                             rtol=1e-6)
  assert float(m0["ssl_loss"]) > 0


def test_recall_at_k_and_bad_masking():
  items = np.eye(4, dtype=np.float32)
  query = np.array([[1., .5, 0, 0], [0, 0, 1., .9]], np.float32)
  # Query 0 ranks items 0, 1; query 1 ranks 2, 3: targets 1 and 2.
  assert retrieval.recall_at_k(query, items, np.array([1, 2]), (1, 2)) == {
      1: 50.0, 2: 100.0}
  with pytest.raises(ValueError, match="allowed"):
    ssl_recsys.make({"masking": "dropout"})


def test_popularity_slices():
  head, tail = recsys.popularity_slices(np.array([5, 0, 9, 1, 3]),
                                        np.zeros(5), 0.4, 0.4)
  assert list(np.flatnonzero(head)) == [0, 2]
  assert list(np.flatnonzero(tail)) == [1, 3]


def test_generated_world_is_long_tailed_and_batches_are_keyed():
  data = recsys._generate(60, 12, 4, 8, 3, 4, 0.5, 0.5, 0.3, 10.0, 0.1,
                          1.0, 600, 40, 0.2, 0.5, 0)
  assert data.item_features.shape == (60, 6)
  assert (data.item_features.max(0) < np.array(data.item_vocab)).all()
  assert data.item_counts.sum() == 600
  # Zipf(1): the least popular half of the items holds few of the pairs.
  assert data.item_counts[data.tail].sum() < 0.2 * 600
  assert data.tail[data.test["tail"][1]].all()
  assert data.head[data.test["head"][1]].all()


def test_movielens_rows_become_recsys_data():
  rows = {"movie_id": np.array([b"10", b"20", b"10", b"30"] * 5),
          "user_id": np.array([b"1", b"2", b"3", b"1", b"2"] * 4),
          "movie_genres": [np.array([4, 7]), np.array([2]),
                           np.array([4, 7]), np.array([], np.int64)] * 5,
          "movie_title": np.array([b"A (1995)", b"B (1972)", b"A (1995)",
                                   b"C"] * 5),
          "user_gender": np.array([True, False, True, True, False] * 4),
          "bucketized_user_age": np.array([25., 18., 56., 25., 18.] * 4),
          "user_occupation_label": np.array([3, 1, 3, 3, 1] * 4)}
  data = recsys.from_ratings(rows, 0.25, 10, 0.34, 0.34, 0)
  np.testing.assert_array_equal(data.item_features, [[0, 4, 7, 9],
                                                     [1, 2, 2, 7],
                                                     [2, 0, 0, 0]])
  assert data.query_vocab == (3, 2, 3, 2)
  assert len(data.train_items) + len(data.test["all"][1]) == 20

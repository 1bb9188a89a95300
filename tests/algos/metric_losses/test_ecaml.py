"""ECAML's energy confusion and N-pair loss against loops over the official
Caffe layers' arithmetic; the stop-gradient structure; the pair batches."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np
import pytest

from algos.metric_losses import ecaml
from common import config as config_lib
from common.data import class_pairs
from common.eval import zero_shot_retrieval as retrieval

N, D, R = 12, 4, 2


def _batch(seed=0):
  rng = np.random.default_rng(seed)
  labels = np.repeat(rng.integers(0, 4, N // 2), 2)       # same-class pairs
  return rng.normal(size=(N, D)).astype(np.float32), labels


def _energy_loop(e, labels, pairs):
  """energy_confusion.cpp's Forward_cpu, literally (value E)."""
  w_pos = sum(labels[i] == labels[j] for i in range(N) for j in range(i + 1, N))
  w_neg = N * (N - 1) // 2 - w_pos
  total = 0.0
  for i in range(N):
    for j in range(i + 1, N):
      if pairs[i, j]:
        w = w_pos if labels[i] == labels[j] else w_neg
        total += 0.5 * np.sum((e[i] - e[j]) ** 2) / w
  return total


def _npair_loop(x, labels, coeff):
  """npair.cpp's Forward_cpu with kcenter 1, k 1, every negative."""
  x = x.astype(np.float64)
  total = 0.0
  for i in range(N):
    pos = [j for j in range(N) if j != i and labels[j] == labels[i]]
    if not pos:
      continue
    c = x[min(pos, key=lambda j: np.linalg.norm(x[i] - x[j]))]
    negs = [j for j in range(N) if labels[j] != labels[i]]
    s = np.array([x[i] @ c] + [x[j] @ c for j in negs])
    p = np.exp(s[0] - s.max()) / np.exp(s - s.max()).sum()
    total += -np.log(max(p, 1e-20)) + x[i] @ x[i] / 2 * coeff
  return total / N


@jax.jit
def _both(x, labels, key):
  pairs = ecaml.confusion_pairs(key, N, R)
  return (pairs, ecaml.energy_confusion(x, labels, pairs),
          ecaml.npair_loss(x, labels, coeff=5e-4),
          jax.grad(ecaml.energy_confusion)(x, labels, pairs))


def test_losses_equal_the_official_arithmetic():
  x, labels = _batch()
  pairs, log_e, npair, grad = _both(x, labels, jax.random.PRNGKey(3))
  pairs = np.asarray(pairs)
  # The draw: R partners per row i < N - 2R, all among j >= i + 2.
  for i in range(N):
    assert pairs[i].sum() == (R if i < N - 2 * R else 0)
    assert not pairs[i, :i + 2].any()
  e_value = _energy_loop(x, labels, pairs)
  np.testing.assert_allclose(log_e, np.log(e_value), rtol=1e-5)
  np.testing.assert_allclose(npair, _npair_loop(x, labels, 5e-4), rtol=1e-5)
  # Backward_cpu: diff_i = sum_j (e_i - e_j) / w over drawn pairs, / E.
  w_pos = sum(labels[i] == labels[j] for i in range(N)
              for j in range(i + 1, N))
  w_neg = N * (N - 1) // 2 - w_pos
  diff = np.zeros_like(x)
  for i, j in zip(*np.nonzero(pairs)):
    w = w_pos if labels[i] == labels[j] else w_neg
    diff[i] += (x[i] - x[j]) / w
    diff[j] -= (x[i] - x[j]) / w
  np.testing.assert_allclose(grad, diff / e_value, rtol=1e-4, atol=1e-6)


def test_the_confusion_term_moves_only_the_embedding_head():
  """Gradients of the backbone are those of the metric loss alone."""
  from common.models import embedding_net  # pylint: disable=g-import-not-at-top
  model = embedding_net.EmbeddingNet(num_classes=1, backbone_kwargs=dict(
      hidden_sizes=(8,)), embedding_dim=D)
  x, labels = _batch(1)
  images = jnp.asarray(x.reshape(N, 2, 2, 1))
  params = model.init(jax.random.PRNGKey(0), images, train=False)["params"]
  ctx = type("Ctx", (), {"model": model,
                         "forward": lambda self, p: (model.apply(
                             {"params": p}, images, train=True), {})})()
  batch = {"label": jnp.asarray(labels), "mask": jnp.ones((N,), bool)}
  static = {"kcenter": 1, "kcenter_n": 0, "random_num": R}

  @jax.jit
  def grads(lam):
    hp = {"lam": lam, "coeff": 5e-4, "scale": 10.0, "k": 1.0}
    return jax.grad(lambda p: ecaml.apply(static, hp, ctx, p, {}, batch,
                                          jax.random.PRNGKey(1))[0])(params)

  g0, g1 = grads(0.0), grads(0.5)
  jax.tree.map(np.testing.assert_array_equal, g0["backbone"], g1["backbone"])
  assert not np.allclose(g0["embed"]["kernel"], g1["embed"]["kernel"])


def test_pair_batches_and_bad_class_sets():
  pool = np.array([0, 1, 0, 2, 1, 2, 0])
  table, count = class_pairs.class_table(pool, (0, 1, 2))
  rows = np.asarray(class_pairs.draw_class_batch(
      jax.random.PRNGKey(0), jnp.asarray(table), jnp.asarray(count), 3, 2))
  labels = pool[rows]
  assert sorted(labels[::2]) == [0, 1, 2]          # distinct classes
  assert np.array_equal(labels[::2], labels[1::2])  # pairs adjacent
  assert np.all(rows[::2] != rows[1::2])           # distinct images
  c = mlc.ConfigDict({"data": {"kwargs": {"train_classes": (0, 1),
                                          "eval_classes": (1, 2)}},
                      "train": {"batch_size": 4, "eval_batch_size": 8}})
  with pytest.raises(config_lib.ConfigError, match="disjoint"):
    class_pairs.digits_pairs(c)


def test_recall_at_k():
  emb = np.array([[0.0], [0.1], [1.0], [1.1], [5.0]])
  labels = np.array([0, 0, 1, 1, 0])
  r = retrieval.recall_at_k(emb, labels, (1, 2))
  assert r[1] == 0.8 and r[2] == 0.8       # the lone 5.0 finds no 0 nearby
  assert retrieval.nmi(emb[:4], labels[:4]) == pytest.approx(1.0)

"""AEM's loss, the ABMIL model, the `mil_digits` bags and the `mil` metrics."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np
import pytest
from jax import test_util as jtu

from algos.mil import aem
from common import config as config_lib
from common.data import mil_bags
from common.eval import mil as mil_eval
from common.models import abmil

B, N, D = 3, 7, 5


@functools.cache
def _model_and_params():
  model = abmil.ABMIL(num_classes=2, inner_dim=6, attention_dim=4)
  bag = {"instances": jnp.zeros((1, N, D)),
         "instance_mask": jnp.ones((1, N), bool)}
  return model, model.init(jax.random.PRNGKey(0), bag, train=False)


def _bags(seed=0):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(B, N, D)).astype(np.float32)
  mask = np.arange(N)[None] < np.array([[7], [4], [1]])
  return x, mask


@jax.jit
def _loss_identities(logits, labels, scores, mask):
  bag_mask = jnp.ones(labels.shape, bool)
  loss0, _ = aem.aem_loss(logits, labels, scores, mask, bag_mask, 0.0)
  loss1, m1 = aem.aem_loss(logits, labels, scores, mask, bag_mask, 0.3)
  ce = -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(B), labels])
  uniform = -aem.attention_neg_entropy(jnp.zeros(scores.shape), mask)
  # The official `sum(softmax(A) * log_softmax(A))` of each bag on its
  # valid instances alone (bag sizes 7, 4, 1).
  official = jnp.stack([
      jnp.sum(jax.nn.softmax(scores[i, :n]) * jax.nn.log_softmax(
          scores[i, :n])) for i, n in enumerate((7, 4, 1))])
  return dict(loss0=loss0, loss1=loss1, ce=ce, h1=m1["attention_entropy"],
              uniform=uniform, official=official,
              ours=aem.attention_neg_entropy(scores, mask))


def test_lambda_zero_is_cross_entropy_and_entropy_is_masked():
  rng = np.random.default_rng(1)
  logits = jnp.asarray(rng.normal(size=(B, 2)), jnp.float32)
  labels = jnp.array([0, 1, 1])
  scores = jnp.asarray(rng.normal(size=(B, N)), jnp.float32)
  _, mask = _bags()
  r = _loss_identities(logits, labels, scores, jnp.asarray(mask))
  np.testing.assert_allclose(r["loss0"], r["ce"], rtol=1e-6)
  np.testing.assert_allclose(r["loss1"], r["ce"] - 0.3 * r["h1"], rtol=1e-6)
  # Uniform scores: H = log(bag size); a one-instance bag has entropy 0.
  np.testing.assert_allclose(r["uniform"], np.log([7, 4, 1]), atol=1e-6)
  np.testing.assert_allclose(r["ours"], r["official"], rtol=1e-5, atol=1e-6)
  neg_h = jax.jit(lambda s: jnp.sum(aem.attention_neg_entropy(s, mask)))
  jtu.check_grads(neg_h, (scores,), order=1, modes=["rev"], atol=1e-2,
                  rtol=1e-2)


def test_padding_does_not_change_the_bag_output():
  model, variables = _model_and_params()
  x, mask = _bags()
  garbage = np.where(mask[..., None], x, 100.0).astype(np.float32)
  apply = jax.jit(lambda v, xx, mm: model.apply(
      v, {"instances": xx, "instance_mask": mm}, train=False))
  out = apply(variables, garbage, mask)
  trimmed = apply(variables, x[1:2, :4], mask[1:2, :4])
  np.testing.assert_allclose(out["logits"][1], trimmed["logits"][0],
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(out["attention"].sum(-1), 1.0, rtol=1e-6)
  assert np.all(np.asarray(out["attention"])[~mask] == 0)


def test_bags_are_labelled_by_their_instances():
  labels = np.repeat(np.arange(10), 5)
  bags = mil_bags.make_bags(labels, 7, 40, 3, 6, 0.5, 2,
                            np.random.default_rng(0))
  sizes = bags["instance_mask"].sum(1)
  assert sizes.min() >= 3 and sizes.max() <= 6
  assert np.array_equal(bags["label"],
                        (bags["instance_label"] * bags["instance_mask"]).max(1))
  got = labels[bags["index"]] == 7
  assert np.array_equal(got & bags["instance_mask"],
                        bags["instance_label"].astype(bool))
  assert 0 < bags["label"].sum() < 40


def test_bad_bag_sizes_are_refused():
  c = mlc.ConfigDict({"data": {"kwargs": {"min_size": 9, "max_size": 4}},
                      "train": {"eval_batch_size": 400}})
  with pytest.raises(config_lib.ConfigError, match="min_size=9 exceeds"):
    mil_bags.mil_digits(c)


def test_instance_auc_is_one_when_attention_finds_the_positives():
  labels = np.array([1, 0])
  inst = np.array([[0, 1, 0], [0, 0, 0]])
  mask = np.ones((2, 3), bool)
  attention = np.array([[0.1, 0.8, 0.1], [0.2, 0.3, 0.5]])
  logits = np.array([[0.0, 2.0], [1.0, 0.0]])
  m = mil_eval.bag_and_instance_metrics(logits, labels, attention, mask, inst)
  assert m["bag_auc"] == 1.0 and m["instance_auc"] == 1.0
  assert m["error"] == 0.0
  np.testing.assert_allclose(m["attention_entropy_ratio"], np.mean(
      [-(0.2 * np.log(0.1) + 0.8 * np.log(0.8)) / np.log(3),
       -(0.2 * np.log(0.2) + 0.3 * np.log(0.3) + 0.5 * np.log(0.5))
       / np.log(3)]), rtol=1e-9)


def test_feature_bags_are_read_in_windows(tmp_path):
  rng = np.random.default_rng(0)
  bags = [rng.normal(size=(n, 3)).astype(np.float32) for n in (2, 6, 4)]
  np.savez(tmp_path / "bags.npz", **mil_bags.pack_bags(
      bags, [0, 1, 1], ["train", "train", "test"]))
  c = mlc.ConfigDict({"data": {"data_dir": str(tmp_path), "kwargs": {
      "file": "bags.npz", "max_instances": 4}},
                      "train": {"eval_batch_size": 2}})
  gen = mil_bags.mil_features(c)
  draw = gen.sample(jax.random.PRNGKey(3), 8)
  for i in range(8):
    x, m = np.asarray(draw["bag"]["instances"][i]), np.asarray(
        draw["bag"]["instance_mask"][i])
    source = bags[1] if draw["label"][i] == 1 else bags[0]
    rows = x[m]
    assert len(rows) == min(len(source), 4)
    start = np.flatnonzero((source == rows[0]).all(1))[0]
    np.testing.assert_array_equal(rows, source[start:start + len(rows)])
  held = gen.eval_sample(None, 2)
  np.testing.assert_array_equal(held["mask"], [True, False])
  np.testing.assert_array_equal(held["bag"]["instances"][0], bags[2])
  c.data.kwargs.file = "missing.npz"
  with pytest.raises(FileNotFoundError, match="pack_bags"):
    mil_bags.mil_features(c)

"""Happy's pure functions against hand computations and the official rules
(`train_happy.py`, `models/utils_proto_aug.py` of mashijie1028/Happy-CGCD)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from algos.discovery import happy

C = 6
SEEN = jnp.array([True, True, True, False, False, False])
ACTIVE = jnp.array([True, True, True, True, True, False])


def _h(p):
  p = np.asarray(p, np.float64)
  p = p[p > 0]
  return -np.sum(p * np.log(p))


def test_entropy_terms_match_hand_computation():
  avg = np.array([0.5, 0.2, 0.1, 0.15, 0.05, 0.0])
  t = happy.soft_entropy_terms(jnp.asarray(avg, jnp.float32), SEEN, ACTIVE)
  p_old, p_new = 0.8, 0.2
  np.testing.assert_allclose(t["old_new"], math.log(2) - _h([p_old, p_new]),
                             rtol=1e-5)
  np.testing.assert_allclose(t["old_in"],
                             math.log(3) - _h(avg[:3] / p_old), rtol=1e-5)
  np.testing.assert_allclose(t["new_in"],
                             math.log(2) - _h(avg[3:5] / p_new), rtol=1e-5)


def test_entropy_terms_vanish_when_uniform_and_new_in_with_one_class():
  avg = jnp.array([1 / 6, 1 / 6, 1 / 6, 0.25, 0.25, 0.0])
  t = happy.soft_entropy_terms(avg, SEEN, ACTIVE)
  for v in t.values():
    np.testing.assert_allclose(v, 0.0, atol=1e-6)
  one_new = jnp.array([True, True, True, True, False, False])
  t = happy.soft_entropy_terms(jnp.array([.3, .2, .1, .4, 0, 0]), SEEN,
                               one_new)
  np.testing.assert_allclose(t["new_in"], 0.0, atol=1e-7)


def test_soft_entropy_reg_equals_official_formula_on_logits():
  logits = jax.random.normal(jax.random.PRNGKey(0), (16, C))
  loss, _ = happy.soft_entropy_reg(logits, SEEN, ACTIVE, 2.0, 1.0, 0.5)
  # official: softmax over the current head (the 5 active classes) / 0.1
  p = np.asarray(jax.nn.softmax(logits[:, :5] / 0.1, -1)).mean(0)
  po, pn = p[:3].sum(), p[3:].sum()
  ref = (2.0 * (po * np.log(po) + pn * np.log(pn) + math.log(2))
         + 1.0 * (math.log(3) - _h(p[:3] / po))
         + 0.5 * (math.log(2) - _h(p[3:] / pn)))
  np.testing.assert_allclose(loss, ref, rtol=1e-4)


def test_soft_entropy_reg_gradient_matches_finite_differences():
  logits = jax.random.normal(jax.random.PRNGKey(1), (4, C), jnp.float64
                             if jax.config.jax_enable_x64 else jnp.float32)
  f = jax.jit(lambda z: happy.soft_entropy_reg(
      z, SEEN, ACTIVE, 1.0, 1.0, 1.0, temperature=1.0)[0])
  g = jax.jit(jax.grad(f))(logits)
  eps = 1e-2
  for idx in [(0, 0), (1, 3), (3, 4)]:
    e = jnp.zeros_like(logits).at[idx].set(eps)
    fd = (f(logits + e) - f(logits - e)) / (2 * eps)
    np.testing.assert_allclose(g[idx], fd, rtol=2e-2, atol=1e-4)
  np.testing.assert_allclose(g[:, 5], 0.0)   # inactive class: no gradient


def test_hardness_is_mean_similarity_to_other_prototypes():
  protos = jax.random.normal(jax.random.PRNGKey(2), (C, 8))
  valid = jnp.array([True, True, True, True, False, False])
  h = happy.prototype_hardness(protos, valid)
  p = np.asarray(protos)[:4]
  p = p / np.linalg.norm(p, axis=1, keepdims=True)
  s = p @ p.T
  ref = (s.sum(1) - np.diag(s)) / 3
  np.testing.assert_allclose(h[:4], ref, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(h[4:], 0.0)


def test_sampling_follows_the_hardness_softmax():
  hardness = jnp.array([0.1, 0.3, 0.2, 0.0, 0.5, 0.9])
  valid = jnp.array([True, True, True, True, True, False])
  probs = happy.sampling_probs(hardness, valid, 0.1)
  ref = np.exp(np.array([1., 3., 2., 0., 5.]))
  np.testing.assert_allclose(probs[:5], ref / ref.sum(), rtol=1e-5)
  protos = jnp.eye(C, 8)
  feats, labels = happy.sample_prototype_features(
      jax.random.PRNGKey(3), protos, hardness, valid, 0.0, 0.1, 20000)
  freq = np.bincount(np.asarray(labels), minlength=C) / 20000
  np.testing.assert_allclose(freq, probs, atol=0.01)
  assert freq[5] == 0   # never an invalid class
  # zero radius: the features are the normalised prototypes
  np.testing.assert_allclose(feats, np.asarray(protos)[np.asarray(labels)])


def test_sampled_features_have_the_radius_as_std():
  protos = jnp.eye(2, 64) * 3.0
  feats, labels = happy.sample_prototype_features(
      jax.random.PRNGKey(4), protos, jnp.zeros(2), jnp.ones(2, bool), 0.2,
      0.1, 4000)
  resid = np.asarray(feats) - np.eye(2, 64)[np.asarray(labels)]
  np.testing.assert_allclose(resid.std(), 0.2, rtol=0.02)


def test_proto_aug_ce_and_feature_distill():
  logits = jax.random.normal(jax.random.PRNGKey(5), (7, C))
  labels = jnp.array([0, 1, 2, 3, 4, 0, 1])
  got = happy.proto_aug_ce(logits, labels, ACTIVE)
  lp = jax.nn.log_softmax(logits[:, :5] / 0.1)
  np.testing.assert_allclose(got, -lp[jnp.arange(7), labels].mean(),
                             rtol=1e-5)
  f = jax.random.normal(jax.random.PRNGKey(6), (5, 4))
  g = jax.random.normal(jax.random.PRNGKey(7), (5, 4))
  nf = f / jnp.linalg.norm(f, axis=1, keepdims=True)
  ng = g / jnp.linalg.norm(g, axis=1, keepdims=True)
  np.testing.assert_allclose(happy.feature_distill(f, g),
                             jnp.sum((nf - ng) ** 2) / 5, rtol=1e-5)
  assert float(happy.feature_distill(f, f)) < 1e-10
  grad_prev = jax.grad(lambda b: happy.feature_distill(f, b))(g)
  np.testing.assert_allclose(grad_prev, 0.0)   # the old model is frozen


def test_prototypes_and_radius():
  rng = np.random.default_rng(0)
  feats = rng.normal(size=(30, 5)).astype(np.float32)
  labels = np.repeat([0, 1, 2], 10)
  valid = np.ones(30, bool)
  valid[-1] = False
  protos, var, counts = happy.class_prototypes(
      jnp.asarray(feats), jnp.asarray(labels), jnp.asarray(valid), 4)
  nf = feats / np.linalg.norm(feats, axis=1, keepdims=True)
  var_ref = []
  for c in range(3):
    x = nf[(labels == c) & valid]
    mu = x.mean(0)
    np.testing.assert_allclose(protos[c], mu / np.linalg.norm(mu), rtol=1e-5)
    var_ref.append(np.trace(np.cov(x.T, bias=True)) / 5)
  np.testing.assert_allclose(var[:3], var_ref, rtol=1e-4)
  np.testing.assert_array_equal(counts, [10, 10, 9, 0])
  r = happy.shared_radius(var, jnp.array([True, True, True, False]))
  np.testing.assert_allclose(r, np.sqrt(np.mean(var_ref)), rtol=1e-4)


def test_kmeans_new_heads_pick_the_unclaimed_clusters():
  # four tight clusters on axes 0..3; heads of classes 0,1 on axes 0,1
  rng = np.random.default_rng(1)
  centres = np.eye(4, 6)
  x = np.concatenate([c + 0.01 * rng.normal(size=(25, 6)) for c in centres])
  head = np.zeros((5, 6), np.float32)
  head[0, 0] = head[1, 1] = 2.0
  head[2:, 5] = 0.5            # new rows' norm 0.5
  seen = jnp.array([True, True, False, False, False])
  active = jnp.array([True, True, True, True, False])
  new = jax.jit(happy.kmeans_new_heads, static_argnums=6)(
      jax.random.PRNGKey(0), jnp.asarray(x, jnp.float32), jnp.ones(100, bool),
      jnp.asarray(head), seen, active, 20)
  new = np.asarray(new)
  np.testing.assert_allclose(new[:2], head[:2])    # seen rows kept
  np.testing.assert_allclose(new[4], head[4])      # inactive row kept
  dirs = np.argmax(np.abs(new[2:4]), axis=1)
  assert sorted(dirs.tolist()) == [2, 3]           # the unclaimed clusters
  np.testing.assert_allclose(np.linalg.norm(new[2:4], axis=1), 0.5,
                             rtol=1e-3)


if __name__ == "__main__":
  pytest.main([__file__])

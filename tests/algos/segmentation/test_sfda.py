"""SFDA's prior-aware entropy: identities, tags, the prior, the harness."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from algos.segmentation import sfda
from common import config as config_lib
from common.core import method as method_lib


def _probs(seed=0, shape=(2, 4, 3, 3)):
  return jax.nn.softmax(jax.random.normal(jax.random.PRNGKey(seed), shape)
                        * 2, -1)


def test_norm_soft_size_counts_argmax_pixels_of_one_hot_maps():
  labels = jnp.array([[[0, 1, 1], [2, 2, 2]]])
  one_hot = jax.nn.one_hot(labels, 3)
  np.testing.assert_allclose(sfda.norm_soft_size(one_hot, 1.0),
                             [[1 / 6, 2 / 6, 3 / 6]], rtol=1e-6)
  # Each pixel divided by its max: the argmax class counts 1.
  probs = _probs()
  manual = (probs / probs.max(-1, keepdims=True)).sum((1, 2))
  np.testing.assert_allclose(sfda.norm_soft_size(probs, 1.0),
                             manual / manual.sum(-1, keepdims=True),
                             rtol=1e-5)


def test_kl_vanishes_at_the_prior_and_entropy_matches_by_hand():
  probs = _probs()
  est = sfda.norm_soft_size(probs, 1.0)
  weights = jnp.array([0.1, 0.5, 0.4])
  terms = jax.jit(sfda.sfda_terms)
  ent, kl, _ = terms(probs, est, weights, 1.0)
  assert abs(float(kl)) < 1e-6
  manual = -(weights * probs * jnp.log(probs)).sum() / probs[..., 0].size
  np.testing.assert_allclose(ent, manual, rtol=1e-5)
  # Padding rows count nowhere.
  rows = jnp.array([True, False])
  ent1, kl1, _ = terms(probs, est + jnp.array([[0.0] * 3, [0.5] * 3]),
                       weights, 1.0, rows)
  ent0, _, _ = terms(probs[:1], est[:1], weights, 1.0)
  np.testing.assert_allclose(ent1, ent0, rtol=1e-6)
  assert abs(float(kl1)) < 1e-6


def test_class_prior_tags_and_source_estimate():
  prior = sfda.class_prior(jnp.array([0.1, 0.2]),
                           jnp.array([[True, True], [False, True]]))
  np.testing.assert_allclose(prior, [[0.7, 0.1, 0.2], [0.8, 0.0, 0.2]],
                             rtol=1e-6)
  labels = jnp.array([[[0, 2], [2, 2]], [[1, 0], [0, 0]]])
  np.testing.assert_array_equal(sfda.image_tags(labels, 3),
                                [[False, True], [True, False]])
  # Mean fraction over the maps that hold the class.
  np.testing.assert_allclose(sfda.estimate_size_prior(labels, 4),
                             [0.25, 0.75, 0.0])


def test_loss_through_the_method_and_its_gradient():
  config = dict(sfda.default_config(), entropy_weights=(0.2, 0.4, 0.4),
                size_prior=(0.1, 0.2))
  run = method_lib.RunInfo(0, 3, 1, 1, 1, 2)
  hp = jax.tree.map(jnp.float32, sfda.hparams(config, run))
  state = sfda.init(None, method_lib.InitContext(
      run, {}, {}, config, extras=sfda.load(config, run)))
  logits = jax.random.normal(jax.random.PRNGKey(1), (2, 4, 4, 3))
  batch = {"label": jnp.zeros((2, 4, 4), jnp.int32).at[0, 0, 0].set(2),
           "mask": jnp.ones(2, bool)}
  method = method_lib.get_method("sfda_seg", config)

  def value(x, lamb_kl=1.0):
    h = dict(hp, lamb_consprior=jnp.float32(lamb_kl))
    return method.loss(h, state, {"logits": x}, batch, {}, None)[0]

  grad = jax.jit(jax.grad(value))(logits)
  assert np.all(np.isfinite(grad)) and float(jnp.abs(grad).sum()) > 0
  # Image 1 holds no foreground: its prior is all background.
  probs = jax.nn.softmax(logits, -1)
  prior = jnp.array([[0.8, 0.0, 0.2], [1.0, 0.0, 0.0]])
  ent, kl, _ = sfda.sfda_terms(probs, prior, jnp.array([0.2, 0.4, 0.4]),
                               1.0)
  value = jax.jit(value)
  np.testing.assert_allclose(value(logits), ent + kl, rtol=1e-5)
  np.testing.assert_allclose(value(logits, 0.0), ent, rtol=1e-5)
  # Without tags every image gets the same prior.
  notags = method_lib.get_method("sfda_seg", dict(config, tags="none"))
  _, kl_none, _ = sfda.sfda_terms(probs, jnp.array([[0.7, 0.1, 0.2]] * 2),
                                  jnp.array([0.2, 0.4, 0.4]), 1.0)
  np.testing.assert_allclose(
      notags.loss(hp, state, {"logits": logits}, batch, {}, None)[0],
      ent + kl_none, rtol=1e-5)


class _PixelLinear(nn.Module):
  """Per-pixel logits `[b, h, w, 3]`; returns the harness's outputs."""

  @nn.compact
  def __call__(self, x, train: bool):
    del train
    return {"logits": nn.Dense(3)(x)}


def test_adaent_prior_is_the_frozen_source_models_proportions():
  config = dict(sfda.default_config(), entropy_weights=(0.2, 0.4, 0.4),
                size_prior=(0.1, 0.2), tags="source_model")
  run = method_lib.RunInfo(0, 3, 1, 1, 1, 2)
  hp = jax.tree.map(jnp.float32, sfda.hparams(config, run))
  model = _PixelLinear()
  rand = np.random.default_rng(0)
  x = jnp.asarray(rand.normal(size=(2, 4, 4, 5)), jnp.float32)
  source = {"Dense_0": {"kernel": jnp.asarray(rand.normal(size=(5, 3)),
                                              jnp.float32),
                        "bias": jnp.zeros(3)}}
  state = sfda.init(None, method_lib.InitContext(
      run, source, {}, config, extras=sfda.load(config, run)))
  method = method_lib.get_method("sfda_seg", config)
  params = jax.tree.map(lambda p: -p, source)  # adapted away from it
  ctx = method_lib.StepContext(model, run, jnp.int32(0), x, {}, None,
                               jax.random.PRNGKey(0), None, None)
  batch = {"label": jnp.zeros((2, 4, 4), jnp.int32), "mask": jnp.ones(2, bool)}
  value, aux = method.apply(hp, ctx, params, state, batch, None)
  # The prior: norm_soft_size of the source model's softmax; no tags used.
  prior = sfda.norm_soft_size(
      jax.nn.softmax(model.apply({"params": source}, x, False)["logits"]),
      1.0)
  probs = jax.nn.softmax(model.apply({"params": params}, x, False)["logits"])
  ent, kl, _ = sfda.sfda_terms(probs, prior, jnp.array([0.2, 0.4, 0.4]),
                               1.0)
  np.testing.assert_allclose(value, ent + kl, rtol=1e-5)
  assert float(kl) > 0 and float(aux.metrics["kl_prior"]) == float(kl)


def test_bad_settings_are_one_line_errors():
  run = method_lib.RunInfo(0, 3, 1, 1, 1, 2)
  with pytest.raises(config_lib.ConfigError, match="entropy_weights has 2"):
    sfda.hparams(sfda.default_config(), run)
  with pytest.raises(config_lib.ConfigError, match="summing below 1"):
    sfda.load(dict(sfda.default_config(), size_prior=(0.6, 0.5)), run)
  with pytest.raises(config_lib.ConfigError, match="tags='pixels'"):
    method_lib.get_method("sfda_seg", dict(tags="pixels"))

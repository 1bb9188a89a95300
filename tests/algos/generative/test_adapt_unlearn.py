"""Adapt-then-Unlearn: EWC and Fisher vs hand computations, the official
repulsion losses and their gradients, strength 0, and the staged protocol
(each stage starts from the previous stage's parameters)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from algos.generative import adapt_unlearn as au
from common import config as config_lib
from common.protocols import staged
from tests.algos.generative.test_gan import gan_config


def _tree(seed):
  r = np.random.default_rng(seed)
  return {"a": jnp.asarray(r.normal(size=(3, 4)), jnp.float32),
          "b": {"c": jnp.asarray(r.normal(size=(5,)), jnp.float32)}}


def test_ewc_penalty_and_fisher_match_hand_computations():
  p, p0, f = _tree(0), _tree(1), jax.tree.map(jnp.abs, _tree(2))
  want = 0.5 * 7.0 * sum(
      np.sum(np.asarray(fi) * (np.asarray(pi) - np.asarray(qi)) ** 2)
      for pi, qi, fi in zip(jax.tree.leaves(p), jax.tree.leaves(p0),
                            jax.tree.leaves(f)))
  np.testing.assert_allclose(au.ewc_penalty(p, p0, f, 7.0), want, rtol=1e-5)
  # Fisher of logit(p, z) = tanh(z @ a) . c[:4]... one sample at a time.
  def logit(params, z):
    return jnp.tanh(z @ params["a"]) @ params["b"]["c"][:4] + 0.0 * z[:, 0]
  z = jax.random.normal(jax.random.PRNGKey(0), (6, 3))
  grads = [jax.grad(lambda q, zi=zi: logit(q, zi[None])[0])(p) for zi in z]
  want_f = jax.tree.map(lambda *g: np.mean(np.square(np.stack(g)), 0),
                        *grads)
  chex.assert_trees_all_close(au.fisher_diagonal(logit, p, z), want_f,
                              rtol=1e-5, atol=1e-7)


def test_parameter_distance_is_the_official_formula():
  """K / (2 T) sum_k sum_t mean((theta_t - theta_k_t)^2)."""
  p, adapted = _tree(0), [_tree(1), _tree(2)]
  per = [np.mean((np.asarray(a) - np.asarray(b)) ** 2)
         for q in adapted for a, b in zip(jax.tree.leaves(p),
                                          jax.tree.leaves(q))]
  want = sum(per) * 2 / (2 * 2)   # K = 2 models, T = 2 tensors
  np.testing.assert_allclose(au.parameter_distance(p, adapted), want,
                             rtol=1e-6)


@pytest.mark.parametrize("kind", ["nl2", "il2", "el2"])
def test_repulsion_losses_values_and_gradients(kind):
  p, adapted = _tree(0), [_tree(1)]
  gamma = 1.3
  d = float(au.parameter_distance(p, adapted))
  value = {"nl2": -gamma * d, "il2": gamma / d,
           "el2": 100.0 * np.exp(-gamma * d)}[kind]
  slope = {"nl2": -gamma, "il2": -gamma / d ** 2,
           "el2": -100.0 * gamma * np.exp(-gamma * d)}[kind]
  loss = lambda q: au.repulsion_loss(au.parameter_distance(q, adapted),
                                     kind, gamma)
  np.testing.assert_allclose(loss(p), value, rtol=1e-5)
  # d(d)/d theta_t = K / (2 T) * 2 (theta_t - theta_k_t) / n_t, K = 1, T = 2
  want = jax.tree.map(lambda a, b: slope * (a - b) / (2 * a.size), p,
                      adapted[0])
  chex.assert_trees_all_close(jax.grad(loss)(p), want, rtol=1e-4)
  # Every kind pushes away from the adapted model: a small step along
  # -grad increases the distance.
  step = jax.tree.map(lambda a, g: a - 1e-3 * g, p, jax.grad(loss)(p))
  assert au.parameter_distance(step, adapted) > d
  # Strength 0: no gradient (the loss is the plain GAN loss + a constant).
  zero = jax.grad(lambda q: au.repulsion_loss(
      au.parameter_distance(q, adapted), kind, 0.0))(p)
  assert all(float(jnp.max(jnp.abs(g))) == 0.0 for g in jax.tree.leaves(zero))


@pytest.mark.slow
def test_staged_run_starts_every_stage_from_the_previous_params(tmp_path):
  """Pretrain (gan) -> 2 adapted copies (EWC anchor = the pretrained
  params, other negatives) -> unlearning from the pretrained params,
  repelled from exactly the two adapted models."""
  c = staged.base_config()
  keys = {**au.DEFAULTS, "num_real": 8, "candidates": 64,
          "ewc_lambda": 10.0, "fisher_samples": 4, "repulsion": "el2",
          "gamma": 0.5}
  del keys["d_width"]
  tiny = gan_config("adapt_unlearn", **keys)
  for section in ("data", "model", "method", "optim", "schedule", "train",
                  "eval"):
    setattr(c, section, tiny[section])
  c.experiment = "test_staged"
  c.method.gan = dict(d_width=8)
  c.eval.name = "none"
  c.pretrain.overrides = ("method.name=gan",)
  c.stage.update(overrides=("method.adapt_unlearn.stage=adapt",),
                 copies=2, index_key="method.adapt_unlearn.adapt_index")
  c = config_lib.apply_overrides(c, {})
  result = staged.run(c, str(tmp_path), show_progress=False)
  assert result.status == "finished" and result.steps == 2
  stages = staged.restore_stages(c, str(tmp_path))
  pre = stages["pretrained"][1]
  copies = [s[1] for s in stages["stage"]]
  tuned = stages["finetuned"][1]
  for state in copies:   # adapted from the pretrained generator
    chex.assert_trees_all_close(state.method_state["anchor"], pre.params)
    assert int(state.method_state["bank_size"]) >= 0
  # Different draws of negatives, different adapted models.
  assert not np.allclose(copies[0].method_state["bank"],
                         copies[1].method_state["bank"])
  for got, state in zip(tuned.method_state["adapted"], copies):
    chex.assert_trees_all_close(got, state.params)
  chex.assert_trees_all_close(tuned.method_state["anchor"], pre.params)

"""compress_noisy: nested dropout, co-teaching selection, CE limits, K."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from algos.noisy_labels import co_teaching
from algos.noisy_labels import compress_noisy
from algos.noisy_labels import nested_dropout
from algos.noisy_labels import two_nets
from common import config as config_lib
from common import models
from common.core import method as method_lib

C, D, B = 5, 8, 12


def _setup(model_name: str, base_kwargs=None, **method_config):
  """(method, ctx, params, state, batch, hp) on a tiny MLP (or its copies)."""
  kwargs = dict(hidden_sizes=(D,), **(base_kwargs or {}))
  if model_name != "mlp":
    kwargs["base"] = "mlp"
  model = models.get_model(model_name, C, **kwargs)
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(B, 6)), jnp.float32)
  params = model.init(jax.random.PRNGKey(0), x, train=False)["params"]
  run = method_lib.RunInfo(num_examples=B * 4, num_classes=C,
                           steps_per_epoch=4, num_epochs=10, total_steps=40,
                           global_batch_size=B)
  method = compress_noisy.make(method_config)
  state = method.init(jax.random.PRNGKey(1), method_lib.InitContext(
      run, params, {}, method_config, model))
  ctx = method_lib.StepContext(
      model=model, run=run, step=jnp.int32(0), inputs=x, model_state={},
      trainable=None, rng_model=jax.random.PRNGKey(2),
      preprocess=lambda b, r: b["image"], normalize=lambda v: v)
  labels = jnp.asarray(rng.integers(0, C, B), jnp.int32)
  batch = {"image": x, "label": labels, "clean_label": labels,
           "mask": jnp.ones(B, bool)}
  config = {**compress_noisy.DEFAULTS, **method_config}
  hp = {k: jnp.float32(v) for k, v in method_lib.default_hparams(
      config, run).items()}
  return method, ctx, params, state, batch, hp


def _ce(logits, labels):
  return jnp.mean(co_teaching.per_example_ce(logits, labels))


@pytest.mark.parametrize("model_name,reg,extra", [
    ("mlp", "none", {}), ("one_net", "dropout", {"dropout": 0.0})])
def test_no_regulariser_and_dropout_zero_equal_cross_entropy(model_name, reg,
                                                             extra):
  method, ctx, params, state, batch, hp = _setup(
      model_name, feature_reg=reg, co_teaching=False, **extra)
  ours = jax.jit(jax.value_and_grad(lambda p: method.apply(
      hp, ctx, p, state, batch, jax.random.PRNGKey(3))[0]))(params)
  plain = jax.jit(jax.value_and_grad(lambda p: _ce(
      ctx.forward(p)[0]["logits"], batch["label"])))(params)
  np.testing.assert_allclose(ours[0], plain[0], rtol=1e-6)
  for a, b in zip(jax.tree.leaves(ours[1]), jax.tree.leaves(plain[1])):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_co_teaching_forget_zero_trains_each_net_on_the_other_half():
  method, ctx, params, state, batch, hp = _setup(
      "two_nets", feature_reg="none", co_teaching=True, forget_rate=0.0)
  def total(p):
    return method.apply(hp, ctx, p, state, batch, jax.random.PRNGKey(3))
  (loss, aux), grads = jax.jit(jax.value_and_grad(total, has_aux=True))(
      params)
  net, h = ctx.model.net, B // 2
  x, y = batch["image"], batch["label"]
  logits = lambda p, xs: net.apply({"params": p}, xs, train=True)["logits"]
  want1 = _ce(logits(params["net1"], x[h:]), y[h:])
  want2 = _ce(logits(params["net2"], x[:h]), y[:h])
  np.testing.assert_allclose(loss, want1 + want2, rtol=1e-6)
  assert float(aux.metrics["kept"]) == 1.0
  g1 = jax.jit(jax.grad(lambda p: _ce(logits(p, x[h:]), y[h:])))(
      params["net1"])
  for a, b in zip(jax.tree.leaves(grads["net1"]), jax.tree.leaves(g1)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_selection_keeps_the_smallest_loss_fraction():
  rng = np.random.default_rng(0)
  losses = rng.exponential(size=40).astype(np.float32)
  valid = np.ones(40, bool)
  valid[-4:] = False
  for rate in (0.0, 0.2, 0.45, 0.9):
    keep = np.asarray(co_teaching.small_loss_mask(
        jnp.asarray(losses), jnp.float32(rate), jnp.asarray(valid)))
    n = int((1 - rate) * 36 + 1e-6)
    want = np.zeros(40, bool)
    want[np.argsort(np.where(valid, losses, np.inf))[:n]] = True
    np.testing.assert_array_equal(keep, want)


def test_forget_rate_schedule_ramps_then_holds():
  got = [float(co_teaching.forget_rate_at(e, 0.4, 5.0)) for e in range(8)]
  want = np.ones(8) * 0.4
  want[:5] = np.linspace(0, 0.4, 5)
  np.testing.assert_allclose(got, want, rtol=1e-6)
  assert float(co_teaching.forget_rate_at(0, 0.3, 0.0)) == pytest.approx(0.3)


def test_nested_mask_is_a_random_prefix_and_monotone():
  masks = np.asarray(jax.vmap(lambda k: nested_dropout.prefix_mask(k, D))(
      jnp.arange(1, D + 1)))
  for k in range(1, D + 1):
    mask = masks[k - 1]
    assert mask.shape == (D,) and mask.sum() == k and np.all(mask[:k] == 1)
  assert np.all(np.diff(masks, axis=0) >= 0)   # more kept, never fewer
  feats = jnp.ones((3, D))
  draw = jax.jit(jax.vmap(lambda key: nested_dropout.nested_features(
      key, feats, 0.0, 3.0)))
  for out in np.asarray(draw(jax.random.split(jax.random.PRNGKey(0), 5))):
    kept = int(out[0].sum())
    assert 1 <= kept <= D and np.all(out == out[0])  # one k per batch
    np.testing.assert_array_equal(out[0], np.arange(D) < kept)
  p = np.asarray(nested_dropout.truncation_probs(D, 0.0, 3.0))
  assert p.sum() == pytest.approx(1.0) and np.all(np.diff(p) < 0)


def test_correct_per_truncation_and_official_tie_break():
  rng = np.random.default_rng(1)
  f = rng.normal(size=(30, 2, D))
  w, b = rng.normal(size=(2, D, C)), rng.normal(size=(2, C))
  y = rng.integers(0, C, 30)
  mask = np.ones(30, bool)
  mask[-3:] = False
  got = nested_dropout.correct_per_truncation(f, w, b, y, mask, rows=7)
  for k in range(1, D + 1):
    logits = np.mean([(f[:, m] * (np.arange(D) < k)) @ w[m] + b[m]
                      for m in range(2)], axis=0)
    assert got[k - 1] == np.sum((logits.argmax(-1) == y)[mask])
  assert nested_dropout.choose_num_kept(np.array([3, 5, 5, 4]), 10) == (2,
                                                                        0.5)


def test_predict_with_all_units_is_the_mean_of_the_copies_logits():
  method, ctx, params, state, _, hp = _setup("two_nets", co_teaching=True)
  assert int(state["num_kept"]) == D
  out = method.predict(hp, ctx, params, state, {})
  want = ctx.model.apply({"params": params}, ctx.inputs, train=False)
  np.testing.assert_allclose(out["logits"], want["logits"], rtol=1e-5,
                             atol=1e-6)
  assert out["member_features"].shape == (B, 2, D)
  fewer = method.predict(hp, ctx, params, {"num_kept": jnp.int32(2)}, {})
  assert not np.allclose(fewer["logits"], out["logits"])


def test_bad_settings_name_what_is_allowed():
  with pytest.raises(config_lib.ConfigError, match="feature_reg"):
    compress_noisy.make({"feature_reg": "nest"})
  with pytest.raises(config_lib.ConfigError, match="two_nets"):
    _setup("one_net", co_teaching=True)
  with pytest.raises(config_lib.ConfigError, match="unknown keys"):
    compress_noisy.make({"forget": 0.2})
  with pytest.raises(ValueError, match="nests wrappers"):
    two_nets.two_nets(C, base="two_nets")

"""The one train step: optax parity, schedules, no retracing, hooks."""

from __future__ import annotations

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from common import config as config_lib
from common.core import optim
from common.core import sharding
from common.core import train_step as train_step_lib
from common.protocols import build
from common.protocols import supervised
from tests.conftest import tiny_config


def _first_batch(s, step=0):
  batches = s.train_batches(step)
  try:
    return next(batches)
  finally:
    batches.close()


def test_step_matches_hand_written_optax_sgd():
  """Harness step == a minimal jitted optax step (MLP, no augmentation)."""
  config = tiny_config(**{
      "model.name": "mlp", "model.kwargs": {}, "method.name": "cross_entropy",
      "data.crop_padding": 0, "schedule.name": "constant",
      "optim.nesterov": True, "optim.weight_decay": 5e-4})
  s = build.setup(config)
  state = s.init_state()
  params0 = jax.tree.map(jnp.array, state.params)
  tx = optax.chain(optax.add_decayed_weights(5e-4),
                   optax.sgd(0.1, momentum=0.9, nesterov=True))

  @jax.jit
  def reference(params, opt_state, batch):
    images = (batch["image"].astype(jnp.float32) / 255.0 - 0.5) / 0.5
    def loss_fn(p):
      logits = s.model.apply({"params": p}, images, train=True)["logits"]
      return optax.softmax_cross_entropy_with_integer_labels(
          logits, batch["label"]).mean()
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  params, opt_state = params0, tx.init(params0)
  for step in range(3):
    batch = _first_batch(s, step)
    state, metrics, _ = s.train_step(state, batch, s.hparams)
    params, opt_state, ref_loss = reference(params, opt_state, batch)
    np.testing.assert_allclose(metrics["loss"], ref_loss, rtol=1e-6)
  chex.assert_trees_all_close(state.params, params, rtol=1e-5, atol=1e-6)


def test_changing_hyperparameters_never_retraces(monkeypatch):
  traced = chex.assert_max_traces(train_step_lib.train_step_fn, n=1)
  monkeypatch.setattr(train_step_lib, "train_step_fn", traced)
  s = build.setup(tiny_config())
  state = s.init_state()
  batch = _first_batch(s)
  for i, overrides in enumerate([
      {}, {"method.ps_kd.alpha_T": 0.3}, {"schedule.learning_rate": 0.01},
      {"optim.weight_decay": 0.0, "optim.momentum": 0.5},
      {"schedule.boundaries_epochs": (0.5,), "schedule.decay_factor": 0.5},
      {"train.num_epochs": 7}]):
    config = config_lib.apply_overrides(s.config, overrides)
    hp = sharding.replicate(
        build.build_hparams(config, s.method, build.setup(config).run),
        s.mesh)
    state, metrics, _ = s.train_step(state, batch, hp)
    assert np.isfinite(metrics["loss"]), i
  chex.clear_trace_counter()


@pytest.mark.parametrize("name,step,expected", [
    ("constant", 500, 0.1),
    ("piecewise", 99, 0.1), ("piecewise", 100, 0.01),
    ("piecewise", 199, 0.01), ("piecewise", 200, 0.001),
    ("cosine", 0, 0.1), ("cosine", 150, 0.05), ("cosine", 300, 0.0),
])
def test_learning_rate_schedules(name, step, expected):
  config = supervised.base_config()
  config.schedule.update(name=name, learning_rate=0.1,
                         boundaries_epochs=(10.0, 20.0), decay_factor=0.1)
  hp = optim.schedule_hparams(config.schedule, steps_per_epoch=10,
                              total_steps=300)
  hp = jax.tree.map(jnp.asarray, hp)
  lr = optim.learning_rate_at(name, hp, jnp.asarray(step))
  np.testing.assert_allclose(lr, expected, rtol=1e-5, atol=1e-7)


def test_warmup_is_linear_from_zero():
  config = supervised.base_config()
  config.schedule.update(name="constant", learning_rate=1.0,
                         warmup_epochs=1.0)
  hp = jax.tree.map(jnp.asarray, optim.schedule_hparams(
      config.schedule, steps_per_epoch=4, total_steps=40))
  lrs = [float(optim.learning_rate_at("constant", hp, jnp.asarray(t)))
         for t in range(6)]
  np.testing.assert_allclose(lrs, [0.25, 0.5, 0.75, 1.0, 1.0, 1.0])


def _step_with(s, method, config=None):
  """The harness's jitted step on `s`'s structure with another method."""
  parts = dataclasses.replace(s.parts, method=method)
  step = train_step_lib.make_train_step(
      parts, s.mesh,
      jax.tree.map(lambda _: sharding.replicated(s.mesh), s.abstract_state))
  hp = sharding.replicate(build.build_hparams(config or s.config, method,
                                              s.run), s.mesh)
  return step, hp


def test_gradient_level_hook_replaces_value_and_grad():
  """A method's value_and_grad hook is what produces the update."""
  s = build.setup(tiny_config(**{"method.name": "cross_entropy",
                                 "schedule.name": "constant",
                                 "optim.weight_decay": 0.0}))
  calls = []

  def zero_grads(hp, ctx, params, method_state, batch, rng, loss_fn):
    del hp, ctx, method_state, batch, rng
    calls.append(1)
    value, aux = loss_fn(params)
    return (value, aux), jax.tree.map(jnp.zeros_like, params)

  step, hp = _step_with(s, s.method._replace(value_and_grad=zero_grads))
  state = s.init_state()
  before = jax.tree.map(jnp.array, state.params)
  state, _, _ = step(state, _first_batch(s), hp)
  assert calls
  chex.assert_trees_all_close(state.params, before)


def test_apply_update_false_keeps_params_and_optimizer_state():
  s = build.setup(tiny_config(**{"method.name": "cross_entropy",
                                 "optim.name": "adamw"}))

  def skip(hp, ctx, params, method_state, batch, rng, loss_fn):
    (value, aux), grads = ctx.value_and_grad(loss_fn, params)
    return (value, aux._replace(apply_update=jnp.asarray(False))), grads

  step, hp = _step_with(s, s.method._replace(value_and_grad=skip))
  state = s.init_state()
  before = jax.tree.map(jnp.array, (state.params, state.opt_state))
  state, metrics, _ = step(state, _first_batch(s), hp)
  assert int(state.step) == 1 and np.isfinite(metrics["loss"])
  chex.assert_trees_all_equal((state.params, state.opt_state), before)


def test_trainable_mask_freezes_leaves_and_their_moments():
  """trainable="norm" updates only normalisation scales and biases."""
  s = build.setup(tiny_config(**{"method.name": "cross_entropy",
                                 "optim.name": "adamw",
                                 "optim.weight_decay": 0.0}))
  method = s.method._replace(trainable="norm")
  s2 = build.setup(s.config, method=method)
  state = s2.init_state()
  before = jax.tree.map(jnp.array, state.params)
  state, _, _ = s2.train_step(state, _first_batch(s2), s2.hparams)
  changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), state.params,
                         before)
  flat = {"/".join(str(getattr(k, "key", k)) for k in path): v
          for path, v in jax.tree_util.tree_flatten_with_path(changed)[0]}
  assert flat and all(v == ("bn" in k) for k, v in flat.items()), flat


def test_after_update_runs_after_the_optimizer_step():
  """An EMA of the params kept in method_state, updated after each step."""
  s = build.setup(tiny_config(**{"method.name": "cross_entropy"}))

  def init(rng, ctx):
    del rng
    return {"ema": jax.tree.map(jnp.copy, ctx.params)}

  def after(hp, ctx, params, method_state, rng):
    del hp, ctx, rng
    ema = jax.tree.map(lambda e, p: 0.5 * e + 0.5 * p, method_state["ema"],
                       params)
    return params, {"ema": ema}

  method = s.method._replace(init=init, after_update=after)
  s2 = build.setup(s.config, method=method)
  state = s2.init_state()
  ema = jax.tree.map(jnp.array, state.params)
  for t in range(3):
    state, _, _ = s2.train_step(state, _first_batch(s2, t), s2.hparams)
    ema = jax.tree.map(lambda e, p: 0.5 * e + 0.5 * p, ema, state.params)
  chex.assert_trees_all_close(state.method_state["ema"], ema, rtol=1e-6)


def test_micro_batches_equal_one_big_batch():
  """Gradient accumulation: 4 micro-batches == one batch (no BatchNorm)."""
  base = {"model.name": "mlp", "model.kwargs": {}, "data.crop_padding": 0,
          "method.name": "cross_entropy", "train.steps": 3}
  one = build.setup(tiny_config(**base))
  four = build.setup(tiny_config(**base, **{"train.micro_batches": 4}))
  s1, s4 = one.init_state(), four.init_state()
  for t in range(3):
    batch = _first_batch(one, t)
    s1, m1, _ = one.train_step(s1, batch, one.hparams)
    s4, m4, _ = four.train_step(s4, batch, four.hparams)
    np.testing.assert_allclose(m4["loss"], m1["loss"], rtol=1e-5)
  chex.assert_trees_all_close(s4.params, s1.params, rtol=1e-4, atol=1e-6)

"""The one train step: optax parity, schedules, no retracing, hooks."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from common import config as config_lib
from common import loop
from common.core import optim
from common.core import sharding
from common.core import train_step as train_step_lib
from common.data import loader
from tests.conftest import tiny_config


def _first_batch(s, step=0):
  it = loader.TrainIterator(s.train_source, s.config.train.batch_size,
                            seed=s.config.seed, start_step=step)
  try:
    return sharding.shard_batch(next(it), s.mesh)
  finally:
    it.close()


def test_step_matches_hand_written_optax_sgd():
  """Harness step == a minimal jitted optax step (MLP, no augmentation)."""
  config = tiny_config(**{
      "model.name": "mlp", "model.kwargs": {}, "method.name": "cross_entropy",
      "data.crop_padding": 0, "schedule.name": "constant",
      "optim.nesterov": True, "optim.weight_decay": 5e-4})
  s = loop.setup(config)
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
    state, metrics = s.train_step(state, batch, s.hparams)
    params, opt_state, ref_loss = reference(params, opt_state, batch)
    np.testing.assert_allclose(metrics["loss"], ref_loss, rtol=1e-6)
  chex.assert_trees_all_close(state.params, params, rtol=1e-5, atol=1e-6)


def test_changing_hyperparameters_never_retraces(monkeypatch):
  traced = chex.assert_max_traces(train_step_lib.train_step_fn, n=1)
  monkeypatch.setattr(train_step_lib, "train_step_fn", traced)
  s = loop.setup(tiny_config())
  state = s.init_state()
  batch = _first_batch(s)
  for i, overrides in enumerate([
      {}, {"method.ps_kd.alpha_T": 0.3}, {"schedule.learning_rate": 0.01},
      {"optim.weight_decay": 0.0, "optim.momentum": 0.5},
      {"schedule.boundaries_epochs": (0.5,), "schedule.decay_factor": 0.5},
      {"train.num_epochs": 7}]):
    config = config_lib.apply_overrides(s.config, overrides)
    hp = sharding.replicate(
        loop.build_hparams(config, s.method, loop.setup(config).run), s.mesh)
    state, metrics = s.train_step(state, batch, hp)
    assert np.isfinite(metrics["loss"]), i
  chex.clear_trace_counter()


@pytest.mark.parametrize("name,step,expected", [
    ("constant", 500, 0.1),
    ("piecewise", 99, 0.1), ("piecewise", 100, 0.01),
    ("piecewise", 199, 0.01), ("piecewise", 200, 0.001),
    ("cosine", 0, 0.1), ("cosine", 150, 0.05), ("cosine", 300, 0.0),
])
def test_learning_rate_schedules(name, step, expected):
  config = config_lib.base_config()
  config.schedule.update(name=name, learning_rate=0.1,
                         boundaries_epochs=(10.0, 20.0), decay_factor=0.1)
  hp = optim.schedule_hparams(config.schedule, steps_per_epoch=10,
                              total_steps=300)
  hp = jax.tree.map(jnp.asarray, hp)
  lr = optim.learning_rate_at(name, hp, jnp.asarray(step))
  np.testing.assert_allclose(lr, expected, rtol=1e-5, atol=1e-7)


def test_warmup_is_linear_from_zero():
  config = config_lib.base_config()
  config.schedule.update(name="constant", learning_rate=1.0,
                         warmup_epochs=1.0)
  hp = jax.tree.map(jnp.asarray, optim.schedule_hparams(
      config.schedule, steps_per_epoch=4, total_steps=40))
  lrs = [float(optim.learning_rate_at("constant", hp, jnp.asarray(t)))
         for t in range(6)]
  np.testing.assert_allclose(lrs, [0.25, 0.5, 0.75, 1.0, 1.0, 1.0])


def test_gradient_level_hook_replaces_value_and_grad(monkeypatch):
  """A method's value_and_grad hook is what produces the update."""
  s = loop.setup(tiny_config(**{"method.name": "cross_entropy",
                                "schedule.name": "constant"}))
  calls = []

  def zero_grads(hparams, loss_fn, params, rng):
    del hparams, rng
    calls.append(1)
    value, aux = loss_fn(params)
    return (value, aux), jax.tree.map(jnp.zeros_like, params)

  method = s.method._replace(value_and_grad=zero_grads)
  config = config_lib.apply_overrides(s.config, {"optim.weight_decay": 0.0})
  step = train_step_lib.make_train_step(
      s.model, method, optim.make_optimizer("sgd", True, "all", False),
      "constant", s.input_spec, s.mesh,
      jax.tree.map(lambda _: sharding.replicated(s.mesh), s.abstract_state))
  state = s.init_state()
  before = jax.tree.map(jnp.array, state.params)
  hp = sharding.replicate(loop.build_hparams(config, method, s.run), s.mesh)
  state, _ = step(state, _first_batch(s), hp)
  assert calls
  chex.assert_trees_all_close(state.params, before)

"""PS-KD identities: schedule, targets, table, alpha=0 equals CE, gradient."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.test_util import check_grads
import numpy as np

from algos.baselines import cross_entropy
from algos.distillation import ps_kd
from common.core import method as method_lib


def _batch(rng, b=6, c=5):
  k1, k2 = jax.random.split(rng)
  return {
      "label": jax.random.randint(k1, (b,), 0, c),
      "index": jnp.array([3, 0, 7, 1, 9, 4])[:b],
      "epoch": jnp.full((b,), 2, jnp.int32),
      "mask": jnp.ones((b,), bool),
  }, jax.random.normal(k2, (b, c))


def _state(n=10, c=5):
  run = method_lib.RunInfo(num_examples=n, num_classes=c, steps_per_epoch=1,
                           num_epochs=4, total_steps=4, global_batch_size=6)
  ctx = method_lib.InitContext(run, {}, {}, {"alpha_T": 0.8})
  return ps_kd.init(jax.random.PRNGKey(0), ctx), run


def test_alpha_schedule_matches_official_formula():
  epochs = jnp.arange(300)
  alpha = ps_kd.alpha_at(epochs, 0.8, 300.0)
  np.testing.assert_allclose(alpha[0], 0.8 / 300, rtol=1e-6)
  np.testing.assert_allclose(alpha[-1], 0.8, rtol=1e-6)   # last epoch = alpha_T
  assert np.all(np.diff(alpha) > 0)


def test_targets_are_distributions(rng):
  batch, logits = _batch(rng)
  past = jax.nn.softmax(jax.random.normal(rng, logits.shape))
  for alpha in (0.0, 0.3, 1.0, jnp.linspace(0, 1, 6)):
    t = ps_kd.progressive_targets(batch["label"], past, alpha)
    assert np.all(t >= 0)
    np.testing.assert_allclose(t.sum(-1), 1.0, rtol=1e-6)


def test_alpha_zero_equals_cross_entropy(rng):
  batch, logits = _batch(rng)
  state, run = _state()
  state["table"] = jax.nn.softmax(jax.random.normal(rng, (10, 5)))
  hp = {"alpha_T": jnp.float32(0.0), "num_epochs": jnp.float32(4)}
  pskd_loss, _, _ = ps_kd.loss(hp, state, {"logits": logits}, batch, {}, rng)
  ce_loss, _, _ = cross_entropy.loss({"label_smoothing": 0.0}, {},
                                     {"logits": logits}, batch, {}, rng)
  np.testing.assert_allclose(pskd_loss, ce_loss, rtol=1e-6)
  del run


def test_table_updates_only_the_batch_rows(rng):
  batch, logits = _batch(rng)
  state, _ = _state()
  state["table"] = jnp.full((10, 5), 0.2)
  batch["mask"] = batch["mask"].at[-1].set(False)   # index 4 is padding
  hp = {"alpha_T": jnp.float32(0.8), "num_epochs": jnp.float32(4)}
  _, _, new = ps_kd.loss(hp, state, {"logits": logits}, batch, {}, rng)
  probs = jax.nn.softmax(logits)
  written = [3, 0, 7, 1, 9]
  np.testing.assert_allclose(new["table"][jnp.array(written)], probs[:5],
                             rtol=1e-6)
  untouched = [i for i in range(10) if i not in written]
  np.testing.assert_array_equal(new["table"][jnp.array(untouched)],
                                np.float32(0.2))


def test_unvisited_rows_act_as_one_hot(rng):
  """The zero-initialised table behaves like the official one-hot init."""
  batch, logits = _batch(rng)
  state, _ = _state()   # all rows zero = never visited
  hp = {"alpha_T": jnp.float32(0.8), "num_epochs": jnp.float32(4)}
  value, _, _ = ps_kd.loss(hp, state, {"logits": logits}, batch, {}, rng)
  ce, _, _ = cross_entropy.loss({"label_smoothing": 0.0}, {},
                                {"logits": logits}, batch, {}, rng)
  np.testing.assert_allclose(value, ce, rtol=1e-6)


def test_gradient_is_softmax_minus_targets(rng):
  batch, logits = _batch(rng)
  state, _ = _state()
  state["table"] = jax.nn.softmax(jax.random.normal(rng, (10, 5)))
  hp = {"alpha_T": jnp.float32(0.8), "num_epochs": jnp.float32(4)}
  grad = jax.grad(lambda z: ps_kd.loss(hp, state, {"logits": z}, batch, {},
                                       rng)[0])(logits)
  alpha = ps_kd.alpha_at(batch["epoch"], 0.8, 4.0)
  targets = ps_kd.progressive_targets(batch["label"],
                                      state["table"][batch["index"]], alpha)
  expected = (jax.nn.softmax(logits) - targets) / logits.shape[0]
  np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-7)
  check_grads(
      lambda z: ps_kd.loss(hp, state, {"logits": z}, batch, {}, rng)[0],
      (logits,), order=1, modes=("rev",), atol=1e-2, rtol=1e-2)

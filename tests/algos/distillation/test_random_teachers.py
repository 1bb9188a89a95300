"""Random Teachers: DINO loss, centring, student init, EMA teacher, probe.

The loss and centring are checked against hand computations (numpy), the
student's neighbourhood init against the official formula, the whole step
(one compiled tiny digits step shared by the step tests) against the same
formulas on its own state, and the ridge probe on separable data.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from algos.distillation import random_teachers as rt
from common import config as config_lib
from common.eval import linear_probe
from common.protocols import build

TINY = {"model.kwargs": dict(base="mlp", hidden_sizes=(16,),
                             hidden_dims=(16,), bottleneck_dim=8, out_dim=32),
        "train.batch_size": 32, "train.steps": 6, "train.eval_batch_size": 120,
        "train.log_every_steps": 1, "train.eval_every_epochs": 0,
        "train.checkpoint_every_steps": 3, "train.tensorboard": False,
        "eval.probe_train_examples": 200}


def tiny_config(**overrides):
  config = config_lib.load_config("experiments/random_teachers/config.py")
  return config_lib.apply_overrides(config, {**TINY, **overrides})


def _np_log_softmax(x):
  x = x - x.max(-1, keepdims=True)
  return x - np.log(np.exp(x).sum(-1, keepdims=True))


def test_dino_loss_matches_a_hand_computation(rng):
  k1, k2, k3 = jax.random.split(rng, 3)
  s, t = jax.random.normal(k1, (5, 7)), jax.random.normal(k2, (5, 7))
  c = 0.3 * jax.random.normal(k3, (7,))
  out = rt.dino_loss(s, t, c, 0.1, 0.04)
  log_t = _np_log_softmax((np.asarray(t) - np.asarray(c)) / 0.04)
  log_s = _np_log_softmax(np.asarray(s) / 0.1)
  ce = -(np.exp(log_t) * log_s).sum(-1)
  h_t = -(np.exp(log_t) * log_t).sum(-1)
  np.testing.assert_allclose(out["ce"], ce.mean(), rtol=1e-5)
  np.testing.assert_allclose(out["kl"], (ce - h_t).mean(), rtol=1e-4,
                             atol=1e-6)
  np.testing.assert_allclose(out["teacher_entropy"], h_t.mean(), rtol=1e-5)
  # No gradient reaches the teacher; the student's is softmax(s/ts) - p_t.
  g_t = jax.grad(lambda t_: rt.dino_loss(s, t_, c, 0.1, 0.04)["ce"])(t)
  assert not np.any(np.asarray(g_t))
  g_s = jax.grad(lambda s_: rt.dino_loss(s_, t, c, 0.1, 0.04)["ce"])(s)
  expect = (np.exp(log_s) - np.exp(log_t)) / 0.1 / 5
  np.testing.assert_allclose(g_s, expect, rtol=1e-4, atol=1e-6)


def test_identical_sharp_views_have_zero_kl(rng):
  t = jax.random.normal(rng, (4, 6))
  out = rt.dino_loss(t, t, jnp.zeros(6), 1.0, 1.0)
  np.testing.assert_allclose(out["kl"], 0.0, atol=1e-6)


def test_center_update_is_the_official_ema_of_batch_means(rng):
  t = jax.random.normal(rng, (8, 5))
  c = jnp.arange(5.0)
  np.testing.assert_allclose(rt.update_center(c, t, 0.9),
                             0.9 * np.arange(5.0) + 0.1 * np.mean(t, 0),
                             rtol=1e-6)
  np.testing.assert_allclose(rt.update_center(c, t, 1.0), c)   # frozen


def test_student_init_neighbourhood_formula(rng):
  teacher = {"a": jax.random.normal(rng, (3, 2)), "b": jnp.ones(4)}
  fresh = jax.tree.map(lambda x: 2.0 * jnp.ones_like(x), teacher)
  same = rt.init_near_teacher(teacher, fresh, 0.0)
  jax.tree.map(np.testing.assert_array_equal, same, teacher)
  near = rt.init_near_teacher(teacher, fresh, 0.5, var_preserving=True)
  np.testing.assert_allclose(near["b"], (1 + 0.5 * 2) / np.sqrt(1.25),
                             rtol=1e-6)
  mid = rt.init_interpolated(teacher, fresh, 0.5, var_preserving=True)
  np.testing.assert_allclose(mid["b"], (0.5 + 0.5 * 2) / np.sqrt(0.5),
                             rtol=1e-6)
  jax.tree.map(np.testing.assert_array_equal,
               rt.init_interpolated(teacher, fresh, 1.0), fresh)


def test_ema_momentum_cosine_schedule_ends_at_one():
  m = [float(rt.ema_momentum_at(jnp.float32(0.996), jnp.int32(s), 11))
       for s in (0, 5, 10)]
  np.testing.assert_allclose(m, [0.996, 0.998, 1.0], rtol=1e-6)


def test_ridge_probe_separates_separable_data_and_not_noise():
  r = np.random.default_rng(0)
  y = r.integers(0, 4, 400)
  x = np.eye(4)[y] * 3 + 0.3 * r.normal(size=(400, 4))
  x = np.concatenate([x, r.normal(size=(400, 6))], 1)
  assert linear_probe.probe_accuracy(x[:300], y[:300], x[300:], y[300:],
                                     4) == 100.0
  noise = r.normal(size=(400, 10))
  acc = linear_probe.probe_accuracy(noise[:300], y[:300], noise[300:],
                                    y[300:], 4)
  assert acc < 45.0   # chance is 25%


@pytest.fixture(scope="module")
def ema_setup():
  cfg = tiny_config(**{"method.random_teachers.teacher": "ema",
                       "method.random_teachers.init_eps": 0.1})
  return build.setup(cfg)


def test_step_updates_center_and_ema_teacher_as_the_formulas(ema_setup):
  s = ema_setup
  state = s.init_state()
  ms = state.method_state
  # The student starts at teacher + 0.1 * (a fresh draw): near, not equal.
  diff = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))),
                      state.params, ms["teacher"])
  assert 0 < max(jax.tree.leaves(diff)) < 0.2
  # The step donates its input state: keep host copies.
  teacher0 = jax.tree.map(np.asarray, ms["teacher"])
  center0 = np.asarray(ms["center"])
  batch = next(s.train_batches(0))
  # The teacher's projections of this batch, computed outside the step.
  inputs = s.parts.preprocess(batch, jax.random.split(
      jax.random.fold_in(state.rng, 0), 3)[0])
  t_proj = s.model.apply({"params": teacher0, **ms["teacher_state"]}, inputs,
                         train=False)["logits"]
  new, metrics, _ = s.train_step(state, batch, s.hparams)
  np.testing.assert_allclose(new.method_state["center"],
                             0.9 * center0 + 0.1 * np.mean(t_proj, 0),
                             rtol=1e-5, atol=1e-7)
  assert float(metrics["method/ce"]) > 0
  m = 0.996   # step 0 of the cosine schedule
  expect = jax.tree.map(lambda t, p: m * t + (1 - m) * p, teacher0,
                        new.params)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5,
                                                       atol=1e-7),
               new.method_state["teacher"], expect)


def test_eps_zero_starts_the_student_at_the_teacher():
  state = build.setup(tiny_config()).init_state()
  # eps 0 (official s_init='teacher'): the student starts as the teacher.
  jax.tree.map(np.testing.assert_array_equal, state.params,
               state.method_state["teacher"])
  assert not np.any(np.asarray(state.method_state["center"]))


def test_bad_settings_are_one_line_errors():
  with pytest.raises(config_lib.ConfigError, match="teacher='mean'"):
    rt.make({"teacher": "mean"})
  with pytest.raises(ValueError, match="allowed"):
    rt.make({"tau": 1.0})

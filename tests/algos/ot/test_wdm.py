"""WDM/WPC and CPC: hand-computed losses, the gradient penalty of a linear
critic, spectral normalisation, gradients, traced weights, the task data,
the Method on the shared step, and bit-exact resume through the loop."""

from __future__ import annotations

import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import test_util as jtu

from algos.ot import wdm
from common import config as config_lib
from common.core import checkpoint as checkpoint_lib
from common.core import logging_utils
from common.core import train_step as train_step_lib
from common.protocols import build
from common.protocols import supervised
from tests.conftest import sigterm_at
from experiments.wdm import data as wdm_data


def test_infonce_hand_values():
  scores = jnp.array([[1.0, 0.0], [0.0, 1.0]])
  np.testing.assert_allclose(wdm.infonce_loss(scores),
                             np.log(1 + np.exp(-1.0)), rtol=1e-6)
  scores = jnp.array([[0.0, 2.0, 1.0], [1.0, 1.0, 1.0], [3.0, 0.0, 0.0]])
  lse = np.log(np.exp(np.asarray(scores)).sum(1))
  expected = -np.mean(np.diag(np.asarray(scores)) - lse)
  np.testing.assert_allclose(wdm.infonce_loss(scores), expected, rtol=1e-6)


def test_gradient_penalty_of_a_linear_critic():
  rng = np.random.default_rng(0)
  w = jnp.asarray(rng.normal(size=(5, 3)), jnp.float32)
  a = np.asarray(w @ w.T)
  x = jnp.asarray(rng.normal(size=(4, 5)), jnp.float32)
  # Identical rows of y: the negatives and the interpolates equal y.
  y = jnp.tile(jnp.asarray(rng.normal(size=(1, 5)), jnp.float32), (4, 1))
  # f(x, y) = x^T W W^T y: grad_x = A y, grad_y = A x.
  norms = np.sqrt(((np.asarray(y) @ a) ** 2).sum(1)
                  + ((np.asarray(x) @ a) ** 2).sum(1))
  gp = wdm.gradient_penalty(lambda v: v @ w, x, y, jax.random.PRNGKey(0))
  np.testing.assert_allclose(gp, np.mean((norms - 1) ** 2), rtol=1e-5)
  one = wdm.gradient_penalty(lambda v: v @ w, x, y, jax.random.PRNGKey(0),
                             one_sided=True)
  np.testing.assert_allclose(one, np.mean(np.maximum(norms - 1, 0) ** 2),
                             rtol=1e-5)
  # f = x_0 * y_0: grad = (y_0, 0; x_0, 0), norm 1 when x_0^2 + y_0^2 = 1.
  xs = jnp.zeros((3, 2)).at[:, 0].set(0.6)
  ys = jnp.zeros((3, 2)).at[:, 0].set(0.8)
  gp0 = wdm.gradient_penalty(lambda v: v[:, :1], xs, ys,
                             jax.random.PRNGKey(1))
  np.testing.assert_allclose(gp0, 0.0, atol=1e-10)


def test_wdm_loss_reduces_to_cpc_and_traces_once():
  net = wdm.Encoder(hidden=(8,), out_dim=4)
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.normal(size=(6, 10)), jnp.float32)
  y = x + 0.1 * jnp.asarray(rng.normal(size=(6, 10)), jnp.float32)
  params = net.init(jax.random.PRNGKey(0), x)["params"]
  key = jax.random.PRNGKey(2)

  @jax.jit
  @chex.assert_max_traces(n=1)
  def loss(params, gp_weight):
    return wdm.wdm_loss(
        lambda v: net.apply({"params": params}, v)["features"], x, y, key,
        gp_weight)

  cpc, m0 = loss(params, jnp.float32(0.0))
  scores = wdm.critic_scores(net.apply({"params": params}, x)["features"],
                             net.apply({"params": params}, y)["features"])
  np.testing.assert_allclose(cpc, wdm.infonce_loss(scores), rtol=1e-6)
  wpc, m1 = loss(params, jnp.float32(10.0))
  np.testing.assert_allclose(wpc, cpc + 10.0 * m1["gradient_penalty"],
                             rtol=1e-5)
  np.testing.assert_allclose(m0["mi_lower_bound"], np.log(6) - cpc,
                             rtol=1e-6)


def test_wdm_gradients_match_finite_differences():
  rng = np.random.default_rng(2)
  w1 = jnp.asarray(rng.normal(size=(5, 4)) * 0.5, jnp.float32)
  x = jnp.asarray(rng.normal(size=(4, 5)), jnp.float32)
  y = jnp.asarray(rng.normal(size=(4, 5)), jnp.float32)

  def f(w):
    return wdm.wdm_loss(lambda v: jnp.tanh(v @ w), x, y,
                        jax.random.PRNGKey(0), 10.0)[0]

  jtu.check_grads(f, (w1,), order=1, modes=("rev",), atol=5e-2, rtol=5e-2,
                  eps=1e-2)


def test_spectral_dense_is_one_lipschitz():
  net = wdm.Encoder(hidden=(16, 16), out_dim=4, spectral_norm=True)
  rng = np.random.default_rng(3)
  x1 = jnp.asarray(rng.normal(size=(50, 7)), jnp.float32)
  x2 = jnp.asarray(rng.normal(size=(50, 7)), jnp.float32)
  params = net.init(jax.random.PRNGKey(0), x1)["params"]
  params = jax.tree.map(lambda p: p * 5.0, params)   # large raw weights
  out = lambda v: net.apply({"params": params}, v)["features"]
  ratio = (jnp.linalg.norm(out(x1) - out(x2), axis=1)
           / jnp.linalg.norm(x1 - x2, axis=1))
  assert float(ratio.max()) <= 1.0 + 1e-4


def test_multi_digit_views_share_only_the_classes():
  train_pool, _ = wdm_data.pools(1200)
  x, y, classes = wdm_data.sample_views(train_pool, jax.random.PRNGKey(0),
                                        batch=5, n=3, noise=0.0)
  assert x.shape == y.shape == (5, 192) and classes.shape == (5, 3)
  blocks = np.asarray(x).reshape(5, 8, 3, 8)           # [b, row, pos, col]
  images = np.asarray(train_pool["images"]).reshape(-1, 8, 8)
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  labels = datasets.load_digits().target[:1200]
  for b in range(5):
    for pos in range(3):
      match = np.flatnonzero(np.all(np.isclose(
          images, blocks[b, :, pos, :][None]), axis=(1, 2)))
      assert match.size and labels[match[0]] == classes[b, pos]
  assert not np.allclose(x, y)        # different images of the same classes


def _tiny_config(**overrides):
  config = config_lib.load_config("experiments/wdm/config.py")
  base = {"model.kwargs.hidden": (16,), "model.kwargs.out_dim": 8,
          "train.batch_size": 16, "train.steps": 6,
          "train.checkpoint_every_steps": 2, "train.log_every_steps": 1,
          "data.kwargs.probe_train": 100, "data.kwargs.probe_test": 32}
  base.update(overrides)
  return config_lib.apply_overrides(config, base)


def test_step_minimises_wdm_loss_of_the_generated_batch():
  """The Method through the shared step: its loss is `wdm_loss` of the
  batch the generator draws from (seed, step), with the step's method key."""
  s = build.setup(_tiny_config())
  state = s.init_state()
  params = jax.device_get(state.params)
  batch = s.parts.sample(train_step_lib.procedural_key(state.rng, 0))
  rng_method = jax.random.split(jax.random.fold_in(state.rng, 0), 3)[2]
  expected, aux = wdm.wdm_loss(
      lambda v: s.model.apply({"params": params}, v)["features"],
      batch["x"], batch["y"], rng_method, 10.0)
  _, metrics, _ = s.train_step(state, {}, s.hparams)
  np.testing.assert_allclose(metrics["loss"], expected, rtol=1e-5)
  np.testing.assert_allclose(metrics["method/gradient_penalty"],
                             aux["gradient_penalty"], rtol=1e-5)
  assert batch["x"].shape == (16, 128) and batch["label"].shape == (16, 2)


def test_sigterm_then_resume_is_bit_exact(tmp_path):
  """A run preempted at step 3 (SIGTERM) and resumed equals a straight one:
  the generator's batches and the penalty's keys depend on (seed, step)."""
  config = _tiny_config()
  straight = supervised.train(config, str(tmp_path / "a"),
                              show_progress=False)


  first = supervised.train(config, str(tmp_path / "b"), hooks=[sigterm_at(3)],
                           show_progress=False)
  assert first.status == "preempted" and first.steps == 3
  resumed = supervised.train(config, str(tmp_path / "b"),
                             show_progress=False)
  assert resumed.status == "finished" and resumed.final == straight.final

  def losses(workdir):
    return [r["loss"] for r in logging_utils.read_jsonl(
        os.path.join(workdir, "metrics.jsonl")) if r["split"] == "train"]
  assert losses(tmp_path / "b") == losses(tmp_path / "a")
  s = build.setup(config)
  states = [checkpoint_lib.Checkpointer(str(tmp_path / d)).restore_latest(
      s.abstract_state) for d in ("a", "b")]
  chex.assert_trees_all_equal(*states)
  # Another config is refused on this workdir, never resumed or reported.
  other = config_lib.apply_overrides(config, {"method.wdm.gp_weight": 0.0})
  with pytest.raises(ValueError, match="different config"):
    supervised.train(other, str(tmp_path / "b"), show_progress=False)

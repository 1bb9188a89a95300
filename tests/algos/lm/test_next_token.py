"""The LM method through the shared train step: loss, evaluator, gradient
accumulation, traced hyperparameters, exact resume, bf16 compute, FSDP."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from algos.lm import losses
from common import config as config_lib
from common.core import sharding
from common.core import train_step as train_step_lib
from common.core import logging_utils
from common.eval import evaluators
from common.protocols import build
from common.protocols import supervised
from tests.common.core.test_train_step import _first_batch
from tests.conftest import run_on_cpu_devices
from tests.conftest import sigterm_at


def lm_test_config(**overrides):
  """The shared LM recipe on `arithmetic/tiny`, tiny transformer, T=32,
  SGD."""
  config = config_lib.load_config("experiments/lm_common.py:stdlib_tiny")
  base = {"data.name": "arithmetic/tiny", "data.eval_split": "test",
          "data.kwargs.text_key": "", "data.kwargs.seq_len": 32,
          "model.kwargs.max_len": 32, "train.batch_size": 8,
          "train.eval_batch_size": 16, "train.steps": 4,
          "train.log_every_steps": 1, "train.checkpoint_every_steps": 2,
          "schedule.learning_rate": 0.1,
          # SGD: an update linear in the gradient, so accumulated and
          # sharded steps compare tightly (Adam's first step is ~sign(g)).
          "optim.name": "sgd", "optim.momentum": 0.9}
  base.update(overrides)
  return config_lib.apply_overrides(config, base)


@functools.partial(jax.jit, static_argnums=0)
def _hand_nll(model, params, batch):
  """Per-token NLL `[B, T]` from the model's full logits (optax CE)."""
  logits = model.apply({"params": params}, batch["tokens"],
                       segment_ids=batch["segment_ids"],
                       positions=batch["positions"])["logits"]
  return optax.softmax_cross_entropy_with_integer_labels(logits,
                                                         batch["targets"])


@pytest.fixture(scope="module")
def lm_setup():
  s = build.setup(lm_test_config())
  return s


def test_naive_loss_is_cross_entropy_of_the_logits():
  k1, k2, k3 = jax.random.split(jax.random.PRNGKey(0), 3)
  feats = jax.random.normal(k1, (6, 8))
  cls = jax.random.normal(k2, (11, 8))
  targets = jax.random.randint(k3, (6,), 0, 11)
  naive = losses.get_loss("naive")
  ref = optax.softmax_cross_entropy_with_integer_labels(feats @ cls.T,
                                                        targets)
  np.testing.assert_allclose(naive(feats, cls, targets), ref, rtol=1e-6)
  capped = 2.0 * jnp.tanh(feats @ cls.T / 2.0)
  np.testing.assert_allclose(
      naive(feats, cls, targets, softcap=2.0),
      optax.softmax_cross_entropy_with_integer_labels(capped, targets),
      rtol=1e-6)
  assert "naive" in losses.loss_names()


def test_step_loss_and_lm_eval_equal_a_hand_written_forward(lm_setup):
  s = lm_setup
  state = s.init_state()
  params = jax.device_get(state.params)
  batch = _first_batch(s)
  mask = batch["loss_mask"]
  keys = ("tokens", "targets", "segment_ids", "positions")
  nll = _hand_nll(s.model, params, {k: batch[k] for k in keys})
  ref = jnp.sum(nll * mask) / jnp.sum(mask)
  _, metrics, _ = s.train_step(state, batch, s.hparams)
  np.testing.assert_allclose(metrics["loss"], ref, rtol=1e-5)
  np.testing.assert_allclose(metrics["method/perplexity"], jnp.exp(ref),
                             rtol=1e-5)
  nats = tokens = nbytes = 0.0
  for b in s.eval_batches():
    m = b["loss_mask"] * b["mask"][:, None]
    keys = ("tokens", "targets", "segment_ids", "positions")
    nll = _hand_nll(s.model, params, {k: b[k] for k in keys})
    nats += float(jnp.sum(nll * m))
    tokens += float(jnp.sum(m))
    nbytes += float(jnp.sum(b["target_bytes"] * m))
  result = evaluators.get_evaluator("lm")(s, s.init_state())
  np.testing.assert_allclose(result["loss"], nats / tokens, rtol=1e-5)
  np.testing.assert_allclose(result["bits_per_byte"],
                             nats / np.log(2) / nbytes, rtol=1e-5)
  assert result["tokens"] == tokens


def test_micro_batches_and_new_numbers_reuse_one_compilation(
    lm_setup, monkeypatch):
  """Gradient accumulation gives the full-batch step; changing the
  learning rate and optimizer numbers never retraces."""
  s = lm_setup
  batch = _first_batch(s)
  state, _, _ = s.train_step(s.init_state(), batch, s.hparams)
  acc = build.setup(lm_test_config(**{"train.micro_batches": 2}))
  acc_state, _, _ = acc.train_step(acc.init_state(), batch, acc.hparams)
  chex.assert_trees_all_close(acc_state.params, state.params, rtol=1e-5,
                              atol=1e-7)

  traced = chex.assert_max_traces(train_step_lib.train_step_fn, n=1)
  monkeypatch.setattr(train_step_lib, "train_step_fn", traced)
  s2 = build.setup(s.config)
  state = s2.init_state()
  for overrides in ({}, {"schedule.learning_rate": 3e-4},
                    {"optim.weight_decay": 0.0, "optim.momentum": 0.5}):
    config = config_lib.apply_overrides(s.config, overrides)
    hp = sharding.replicate(build.build_hparams(config, s2.method, s2.run),
                            s2.mesh)
    state, metrics, _ = s2.train_step(state, batch, hp)
    assert np.isfinite(metrics["loss"])
  chex.clear_trace_counter()


def test_preempted_lm_run_resumes_bit_exact(tmp_path):
  config = lm_test_config()
  full = supervised.train(config, str(tmp_path / "full"),
                          show_progress=False)
  cut = str(tmp_path / "cut")
  first = supervised.train(config, cut, hooks=[sigterm_at(3)],
                           show_progress=False)
  assert first.status == "preempted" and first.steps == 3
  resumed = supervised.train(config, cut, show_progress=False)
  assert resumed.final == full.final
  losses_of = lambda d: [r["loss"] for r in logging_utils.read_jsonl(
      f"{d}/metrics.jsonl") if r["split"] == "train"]
  assert losses_of(cut) == losses_of(tmp_path / "full")


def test_bfloat16_compute_keeps_float32_master_weights(lm_setup):
  s32 = lm_setup
  s16 = build.setup(lm_test_config(**{"model.dtype": "bfloat16"}))
  batch = _first_batch(s32)
  st32, m32, _ = s32.train_step(s32.init_state(), batch, s32.hparams)
  st16, m16, _ = s16.train_step(s16.init_state(), batch, s16.hparams)
  dtypes = {x.dtype for x in jax.tree.leaves((st16.params, st16.opt_state))
            if jnp.issubdtype(x.dtype, jnp.floating)}
  assert dtypes == {jnp.dtype(jnp.float32)}
  np.testing.assert_allclose(m16["loss"], m32["loss"], rtol=2e-2)
  assert s16.model.config.dtype == "bfloat16"


_FSDP_SCRIPT = """
import json, sys
import jax, numpy as np
sys.path.insert(0, '.')
from tests.algos.lm.test_next_token import lm_test_config
from common.core import checkpoint
from common.protocols import build
out = {}
for mode in ("replicated", "fsdp"):
  s = build.setup(lm_test_config(**{"train.param_sharding": mode}))
  state = s.init_state()
  it = s.train_batches(0)
  losses = []
  for _ in range(3):
    state, metrics, _ = s.train_step(state, next(it), s.hparams)
    losses.append(float(metrics["loss"]))
  it.close()
  split = [not x.sharding.is_fully_replicated
           for x in jax.tree.leaves(state.params)]
  if mode == "fsdp":  # a checkpoint round trip keeps values and placement
    ckpt = checkpoint.Checkpointer(sys.argv[1])
    ckpt.save(state)
    back = ckpt.restore_latest(s.abstract_state)
    ckpt.close()
    out["restored"] = all(
        bool((a == b).all()) and a.sharding == b.sharding
        for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(back)))
  out[mode] = {"losses": losses, "split": sum(split),
               "params": [np.asarray(x).ravel()[:50].tolist()
                          for x in jax.tree.leaves(state.params)]}
print(json.dumps(out))
"""


def test_fsdp_equals_replicated_on_eight_devices(tmp_path):
  out = run_on_cpu_devices(_FSDP_SCRIPT, 8, str(tmp_path))
  rep, fsdp = out["replicated"], out["fsdp"]
  assert rep["split"] == 0 and fsdp["split"] > 0
  assert out["restored"]
  np.testing.assert_allclose(fsdp["losses"], rep["losses"], rtol=1e-5)
  for a, b in zip(fsdp["params"], rep["params"]):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("variant", ["stdlib_small", "arithmetic_small",
                                     "lm1b_gpt2", "c4_gpt2"])
def test_lm_recipe_variants_validate(variant):
  config = config_lib.load_config(f"experiments/lm_common.py:{variant}")
  supervised.validate(config)
  assert config.method.name == "next_token" and config.eval.name == "lm"

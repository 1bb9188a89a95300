"""ELR+: reduction to CE, targets from the other net's EMA, EMA update,
parity with the official ELR_plus loss (skipped without the checkout)."""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os
import sys
import types
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from algos.noisy_labels import elr_plus
from common import models
from common.core import method as method_lib

C, D, B, N = 5, 8, 6, 24
INDEX = (3, 0, 7, 1, 9, 4)


def _setup(**method_config):
  """(method, ctx, params, state, batch, hp) on two tiny MLPs."""
  model = models.get_model("two_nets", C, base="mlp", hidden_sizes=(D,))
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(B, 6)), jnp.float32)
  params = model.init(jax.random.PRNGKey(0), x, train=False)["params"]
  run = method_lib.RunInfo(num_examples=N, num_classes=C, steps_per_epoch=4,
                           num_epochs=10, total_steps=40, global_batch_size=B)
  method = elr_plus.make(method_config)
  state = method.init(jax.random.PRNGKey(1), method_lib.InitContext(
      run, params, {}, method_config, model))
  ctx = method_lib.StepContext(
      model=model, run=run, step=jnp.int32(0), inputs=x, model_state={},
      trainable=None, rng_model=jax.random.PRNGKey(2),
      preprocess=lambda b, r: b["image"], normalize=lambda v: v)
  batch = {"image": x, "label": jnp.asarray(rng.integers(0, C, B), jnp.int32),
           "index": jnp.asarray(INDEX, jnp.int32), "mask": jnp.ones(B, bool)}
  hp = {k: jnp.float32(v) for k, v in method_lib.hparams_of(
      method, method_config, run).items()}
  return method, ctx, params, state, batch, hp


def _logits(ctx, p, x):
  return ctx.model.net.apply({"params": p}, x, train=True)["logits"]


def _ce(logits, labels):
  return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits),
                                       labels[:, None], axis=-1))


@functools.lru_cache(maxsize=None)
def _shared_step():
  """One compilation of `value_and_grad(apply)` shared by the tests; the
  hyperparameters and the method state are arguments (traced)."""
  method, ctx, params, state, batch, _ = _setup()
  fn = lambda hp, p, s: method.apply(hp, ctx, p, s, batch,
                                     jax.random.PRNGKey(3))
  return (ctx, params, state, batch,
          jax.jit(jax.value_and_grad(fn, argnums=1, has_aux=True)))


def _hp(**overrides):
  return {k: jnp.float32(v)
          for k, v in {**elr_plus.DEFAULTS, **overrides}.items()}


def test_no_regulariser_no_mixup_is_the_sum_of_per_network_ce():
  ctx, params, state, batch, step = _shared_step()
  x, y = batch["image"], batch["label"]
  ours = step(_hp(lam=0.0, mixup_alpha=0.0), params, state)
  plain = jax.jit(jax.value_and_grad(lambda p: sum(
      _ce(_logits(ctx, p[n], x), y) for n in ("net1", "net2"))))(params)
  np.testing.assert_allclose(ours[0][0], plain[0], rtol=1e-6)
  for a, b in zip(jax.tree.leaves(ours[1]), jax.tree.leaves(plain[1])):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_targets_come_from_the_other_networks_ema():
  ctx, params, state, batch, step = _shared_step()
  # Distinct EMAs: net k's targets must be the OTHER EMA's predictions.
  ema = {"net1": jax.tree.map(lambda v: 2.0 * v, params["net1"]),
         "net2": jax.tree.map(lambda v: -1.5 * v, params["net2"])}
  (_, aux), _ = step(_hp(beta=0.7), params, {**state, "ema": ema})
  x, index = batch["image"], np.asarray(INDEX)
  for mine, other in (("net1", "net2"), ("net2", "net1")):
    t = np.asarray(aux.method_state["targets"][mine])
    want = 0.3 * jax.nn.softmax(_logits(ctx, ema[other], x))
    np.testing.assert_allclose(t[index], want, rtol=1e-6, atol=1e-7)
    assert not np.any(np.delete(t, index, axis=0))


def test_ema_update_is_the_official_decay():
  method, ctx, params, state, _, hp = _setup(ema_alpha=0.99, ema_step=50.0)
  ema = jax.tree.map(jnp.zeros_like, params)
  state = {**state, "ema": ema}
  for ramp, step in ((1.0, 0), (1.0, 20), (1.0, 80), (0.0, 5), (0.0, 500)):
    hp = {**hp, "ema_ramp": jnp.float32(ramp)}
    c = dataclasses.replace(ctx, step=jnp.int32(step))
    _, new = method.after_update(hp, c, params, state, None)
    t = step + 1   # the official global_step + local_step
    if ramp:
      phase = 1.0 - min(t + 1, 50) / 50
      d = float(np.exp(-5.0 * phase * phase)) * 0.99
    else:
      d = min(1 - 1 / (t + 1), 0.99)
    for a, w in zip(jax.tree.leaves(new["ema"]), jax.tree.leaves(params)):
      np.testing.assert_allclose(a, (1 - d) * np.asarray(w), rtol=1e-6,
                                 atol=1e-8)


def test_mixup_never_pairs_with_padding_and_lambda_at_least_half():
  mask = jnp.asarray([True] * 4 + [False] * 2)
  draw = jax.jit(elr_plus.mixup_draw)
  for seed in range(5):
    lam, perm = draw(jax.random.PRNGKey(seed), jnp.float32(1.0), mask)
    assert 0.5 <= float(lam) <= 1.0
    assert np.all(np.asarray(mask)[np.asarray(perm)[:4]])
  lam, _ = draw(jax.random.PRNGKey(0), jnp.float32(0.0), mask)
  assert float(lam) == 1.0


def test_bad_settings_name_what_is_allowed():
  with pytest.raises(ValueError, match="two_nets"):
    model = models.get_model("one_net", C, base="mlp", hidden_sizes=(D,))
    x = jnp.zeros((2, 6))
    params = model.init(jax.random.PRNGKey(0), x, train=False)["params"]
    run = method_lib.RunInfo(N, C, 4, 1, 4, B)
    elr_plus.make({}).init(None, method_lib.InitContext(run, params, {}, {},
                                                        model))
  with pytest.raises(ValueError, match="allowed"):
    _setup(predict_with="best")


# ------------------------------------------- parity with the official code
# The official ELR_plus/model/loss.py (`update_hist`, then the loss) beside
# ours for 3 steps on the same EMA logits, logits, mixed labels, example
# indices and mixup (lambda, permutation); loss, gradient w.r.t. the logits
# and the target table to 1e-6. Needs the checkout:
#   git -C <mirror of shengliu66/ELR> archive HEAD ELR_plus | tar -x -C /tmp/elr
#   REGJAX_OFFICIAL_ELR_DIR=/tmp/elr JAX_PLATFORMS=cpu python -m pytest -q \
#       tests/algos/noisy_labels/test_elr_plus.py
ENV = "REGJAX_OFFICIAL_ELR_DIR"
PLUS = os.path.join(os.environ.get(ENV, ""), "ELR_plus")


def _official_loss_module():
  """ELR_plus/model/loss.py with its `utils` (ELR_plus/utils/util.py) and a
  stand-in `parse_config` (the loss only names ConfigParser)."""
  spec = importlib.util.spec_from_file_location(
      "utils", os.path.join(PLUS, "utils", "util.py"))
  utils = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(utils)
  stand_in = types.ModuleType("parse_config")
  stand_in.ConfigParser = None
  with mock.patch.dict(sys.modules, utils=utils, parse_config=stand_in):
    spec = importlib.util.spec_from_file_location(
        "elr_plus_official_loss", os.path.join(PLUS, "model", "loss.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
  return module


@pytest.mark.skipif(
    not os.path.isfile(os.path.join(PLUS, "model", "loss.py")),
    reason=f"official ELR+ code: set {ENV} to a checkout of shengliu66/ELR")
@pytest.mark.parametrize("classes,coef_step", [(10, 0), (100, 50)])
def test_loss_and_targets_match_the_official_elr_plus(classes, coef_step):
  torch = pytest.importorskip("torch")
  lam_elr, beta, b, n = 3.0, 0.7, 6, 20
  config = {"coef_step": coef_step, "train_loss": {"args": {"lambda": lam_elr}}}
  official = _official_loss_module().elr_plus_loss(
      n, config, "cpu", num_classes=classes, beta=beta)
  targets = jnp.zeros((n, classes), jnp.float32)
  rng = np.random.default_rng(classes)
  for it in (1, 7, 30):
    index = rng.choice(n, b, replace=False)
    perm = rng.permutation(b)
    mix_l = float(rng.uniform(0.5, 1.0))
    ema_logits = (4.0 * rng.normal(size=(b, classes))).astype(np.float32)
    logits = (6.0 * rng.normal(size=(b, classes))).astype(np.float32)
    onehot = np.eye(classes, dtype=np.float32)[rng.integers(0, classes, b)]
    y_mix = mix_l * onehot + (1 - mix_l) * onehot[perm]
    # Official.
    official.update_hist(0, torch.tensor(ema_logits), index.tolist(),
                         mix_index=torch.tensor(perm), mixup_l=mix_l)
    out = torch.tensor(logits, requires_grad=True)
    want, _ = official(it, out, torch.tensor(y_mix))
    want.backward()
    # Ours.
    lam, p = jnp.float32(mix_l), jnp.asarray(perm)
    targets, q = elr_plus.mixed_targets(
        targets, jnp.asarray(index), jnp.asarray(ema_logits),
        jnp.ones(b, bool), jnp.float32(beta), lam, p)
    coef = elr_plus.sigmoid_rampup(jnp.float32(it), jnp.float32(coef_step))
    f = lambda z: elr_plus.elr_plus_loss(
        z, jnp.asarray(y_mix), q, coef, jnp.float32(lam_elr),
        jnp.ones(b, bool), label_times_target=classes == 100)[0]
    value, grad = jax.value_and_grad(f)(jnp.asarray(logits))
    np.testing.assert_allclose(value, want.item(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(grad, out.grad.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(targets, official.pred_hist.numpy(),
                               rtol=1e-6, atol=1e-6)

"""Entropy-guided attention: the regulariser (official parity), the
entropy summary, the softmax-only block options and the method."""

import functools
import math
import os
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from algos.lm import entropy_guided_attention as ega
from common.core import method as method_lib
from common.models import normalized_dense
from common.models import transformer as transformer_lib

_OFFICIAL = os.environ.get("REGJAX_OFFICIAL_ENTROPY_GUIDED_ATTENTION_DIR")


def _attn(seed=0, layers=2, b=2, h=3, t=6):
  """Causal attention maps, some heads sharp, some flat."""
  rng = np.random.default_rng(seed)
  scale = rng.uniform(0.1, 8.0, (layers, 1, h, 1, 1))
  scores = rng.normal(size=(layers, b, h, t, t)) * scale
  mask = np.tril(np.ones((t, t), bool))
  scores = np.where(mask, scores, -np.inf)
  probs = np.exp(scores - scores.max(-1, keepdims=True))
  return list((probs / probs.sum(-1, keepdims=True)).astype(np.float32))


def _reference(attn, thresholds, tol):
  """A direct loop over the definition (the docstring's formula)."""
  e_max = math.log(attn[0].shape[-1])
  total = 0.0
  for l, a in enumerate(attn):
    ent = -(a * np.log(a + 1e-9)).sum(-1)                     # [B, H, T]
    dev = ent - thresholds[l][None, :, None] * e_max
    total += np.where(np.abs(dev) > tol * e_max, dev ** 2, 0).sum() / a.shape[1]
  return total / len(attn)


def test_regulariser_matches_its_definition_and_margin_zeroes_it():
  attn = _attn()
  th = np.array([[0.2, 0.5, 0.9], [0.1, 0.3, 0.7]], np.float32)
  got = float(ega.entropy_regularizer(attn, jnp.asarray(th), 0.2))
  np.testing.assert_allclose(got, _reference(attn, th, 0.2), rtol=1e-5)
  assert got > 0
  # A margin as wide as the max entropy leaves nothing to penalise.
  assert float(ega.entropy_regularizer(attn, jnp.asarray(th), 1.0)) == 0.0


@pytest.mark.skipif(not _OFFICIAL, reason=(
    "set REGJAX_OFFICIAL_ENTROPY_GUIDED_ATTENTION_DIR to a checkout of "
    "Nandan91/entropy-guided-attention-llm"))
def test_regulariser_equals_the_official_entropy_regularization():
  torch = pytest.importorskip("torch")
  sys.path.insert(0, _OFFICIAL)
  from entropy_regularization import EntropyRegularization  # pylint: disable=g-import-not-at-top
  attn = _attn(seed=3, layers=3, b=2, h=4, t=8)
  th = np.array([0.15, 0.4, 0.6, 0.95], np.float32)           # one per head
  reg = EntropyRegularization(loss_coeff=1e-5, tolerance_margin_factor=0.2)
  want = reg.compute_loss([torch.from_numpy(a) for a in attn],
                          torch.from_numpy(th), 4, 3).item()
  got = 1e-5 * float(ega.entropy_regularizer(
      attn, jnp.broadcast_to(jnp.asarray(th), (3, 4)), 0.2))
  np.testing.assert_allclose(got, want, rtol=1e-5)
  ent = EntropyRegularization.compute_entropy(torch.from_numpy(attn[0]))
  np.testing.assert_allclose(ega.attention_entropy(attn[0]), ent.numpy(),
                             rtol=1e-5, atol=1e-6)


def test_normalised_entropy_and_head_summary():
  t = 5
  uniform = np.tril(np.ones((t, t), np.float32))
  uniform /= uniform.sum(-1, keepdims=True)
  onehot = np.eye(t, dtype=np.float32)
  attn = [np.stack([uniform, onehot])[None]]                   # [1, 2, t, t]
  pos = np.arange(t)[None]
  sums, count = ega.normalized_entropy_sums(attn, np.ones((1, t)), pos + 1)
  assert float(count[0]) == t - 1                              # first query out
  np.testing.assert_allclose(np.asarray(sums[0, 0]) / (t - 1), [1.0, 0.0],
                             atol=1e-6)
  summary = ega.head_summary(np.array([[0.9, 0.5], [0.1, 0.3]]))
  assert summary["overload_early"] == 0.5 and summary["collapse_deep"] == 0.5


@functools.cache
def _model_and_params(**fields):
  model = transformer_lib.transformer(32, size="tiny", num_layers=2,
                                      d_model=16, num_heads=2, d_ff=32,
                                      max_len=8, **fields)
  tokens = jnp.arange(12, dtype=jnp.int32).reshape(2, 6) % 32
  params = model.init(jax.random.PRNGKey(0), tokens)["params"]
  return model, params, tokens


def test_normalised_ffn_kernels():
  model, params, tokens = _model_and_params(norm="none", ffn="linear",
                                            ffn_norm="weight", ffn_scale=True)
  mlp = params["layer_0"]["mlp"]
  assert float(mlp["ffn_scale"]) == 1.0
  # Weight norm starts equal to the plain layer: gain = column norms.
  np.testing.assert_allclose(
      mlp["up"]["gain"], np.linalg.norm(mlp["up"]["kernel"], axis=0),
      rtol=1e-6)
  assert np.isfinite(model.apply({"params": params}, tokens)["logits"]).all()
  w = normalized_dense.spectral_normalize(mlp["up"]["kernel"] * 7.0)
  np.testing.assert_allclose(np.linalg.norm(np.asarray(w), 2), 1.0,
                             rtol=1e-5)


def test_evaluator_sums_tokens_and_head_entropies_over_real_rows():
  sums = np.array([[[0.9, 0.5], [0.1, 0.3]], [[0.0, 0.0], [9.0, 9.0]]])
  out = {"token_nll": np.full((2, 3), 2.0, np.float32),
         "entropy_sums": (sums * 2).astype(np.float32),
         "entropy_count": np.array([2.0, 2.0], np.float32)}
  batch = {"loss_mask": np.ones((2, 3), np.float32),
           "mask": np.array([1, 0], np.float32),
           "target_bytes": np.ones((2, 3), np.float32)}
  setup = types.SimpleNamespace(
      eval_batches=lambda: [batch], hparams={},
      eval_step=lambda state, b, hp, output_keys: out)
  result = ega.evaluate(setup, None)
  assert result["tokens"] == 3 and result["loss"] == pytest.approx(2.0)
  assert result["entropy/layer_1"] == pytest.approx(0.2)   # padded row out
  assert result["overload_early"] == 0.5


def test_method_strength_zero_is_next_token_and_thresholds_learn():
  model, params, tokens = _model_and_params(learn_temperature=True)
  batch = {"tokens": tokens, "targets": jnp.roll(tokens, -1, 1),
           "loss_mask": jnp.ones(tokens.shape)}
  run = method_lib.RunInfo(0, 32, 1, 1, 1, 2)
  method = method_lib.get_method("entropy_guided_attention",
                                 {"threshold_init": 0.3})
  init = method.init(None, method_lib.InitContext(run, params, {}, {},
                                                  model))
  full = init.params
  assert full["entropy_threshold"]["layer_1"].shape == (2,)
  ctx = method_lib.StepContext(model, run, jnp.int32(0), tokens, {}, None,
                               jax.random.PRNGKey(1), None, None)
  base = method_lib.get_method("next_token", {})

  @jax.jit
  def losses(p, coeff):
    hp = {"reg_coeff": coeff, "tolerance": jnp.float32(0.0)}
    fn = lambda q: method.apply(hp, ctx, q, {}, batch, None)
    (loss, aux), grads = jax.value_and_grad(fn, has_aux=True)(p)
    plain = base.apply({}, ctx, params, {}, batch, None)[0]
    return loss, aux.metrics["entropy_reg"], plain, grads
  loss0, reg, plain, g0 = losses(full, jnp.float32(0.0))
  np.testing.assert_allclose(loss0, plain, rtol=1e-6)
  assert float(jnp.abs(g0["entropy_threshold"]["layer_0"]).max()) == 0.0
  loss1, _, _, g1 = losses(full, jnp.float32(1e-2))
  np.testing.assert_allclose(loss1, plain + 1e-2 * reg, rtol=1e-5)
  assert float(jnp.abs(g1["entropy_threshold"]["layer_0"]).max()) > 0.0
  assert float(jnp.abs(
      g1["layer_0"]["attn"]["log_temperature"]).max()) > 0.0

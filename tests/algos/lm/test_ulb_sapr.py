"""ULB-SAPR: the quantiser (official parity, storage), bad input and the
ApiQ block objective."""

import functools
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from algos.lm import quantizer
from algos.lm import ulb_sapr
from common import config as config_lib
from common.core import method as method_lib
from common.models import transformer as transformer_lib

_OFFICIAL = os.environ.get("REGJAX_OFFICIAL_ULB_SAPR_DIR")


def _weights(seed=0, shape=(12, 32)):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


@pytest.mark.skipif(not _OFFICIAL, reason=(
    "set REGJAX_OFFICIAL_ULB_SAPR_DIR to a checkout of TokuyuSou/ULB-SAPR"))
def test_codes_are_bit_exact_with_the_official_quantizer():
  torch = pytest.importorskip("torch")
  sys.path.insert(0, _OFFICIAL)
  from apiq.quant_linear import UniformAffineQuantizer  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(1)
  for bits in quantizer.BITS:
    w = _weights(bits, (24, 64)) * 0.05
    q = UniformAffineQuantizer(n_bits=bits, group_size=16, shape=w.shape,
                               lwc=True)
    factors = rng.uniform(-1, 5, (2,) + tuple(q.upbound_factor.shape))
    with torch.no_grad():
      q.upbound_factor.copy_(torch.from_numpy(factors[0].astype(np.float32)))
      q.lowbound_factor.copy_(torch.from_numpy(factors[1].astype(np.float32)))
      deq = q(torch.from_numpy(w)).numpy()
      want = (torch.round(torch.from_numpy(w).reshape(-1, 16) / q.scale)
              + q.round_zero_point).clamp(q.qmin, q.qmax).reshape(w.shape)
    clip = {"up": jnp.asarray(factors[0], jnp.float32),
            "low": jnp.asarray(factors[1], jnp.float32)}
    codes, scale, zero = quantizer.codes(jnp.asarray(w), clip, bits, 16)
    np.testing.assert_array_equal(np.asarray(codes), want.numpy())
    np.testing.assert_array_equal(np.asarray(zero), q.round_zero_point)
    np.testing.assert_allclose(scale, q.scale.numpy(), rtol=1e-6)
    np.testing.assert_allclose(quantizer.fake_quant(jnp.asarray(w), clip,
                                                    bits, 16), deq,
                               rtol=1e-6, atol=1e-7)


def test_rtn_storage_and_straight_through_gradient():
  w = _weights()
  # Without clipping: min-max round-to-nearest of each group of 8.
  g = w.reshape(-1, 8)
  scale = (g.max(1, keepdims=True) - g.min(1, keepdims=True)) / 3
  zero = np.round(-g.min(1, keepdims=True) / scale)
  want = (np.clip(np.round(g / scale) + zero, 0, 3) - zero) * scale
  np.testing.assert_allclose(quantizer.fake_quant(jnp.asarray(w), None, 2, 8),
                             want.reshape(w.shape), rtol=1e-5, atol=1e-6)
  # The exact bytes: packed codes round-trip, and the formula agrees.
  stored = quantizer.packed_layer(w, None, 3, 8, lora={"A": np.ones((2, 32)),
                                                       "B": np.ones((12, 2))})
  codes = np.asarray(quantizer.codes(jnp.asarray(w), None, 3, 8)[0])
  np.testing.assert_array_equal(
      quantizer.unpack(stored["codes"], 3, w.size).reshape(w.shape), codes)
  assert sum(v.nbytes for v in stored.values()) == quantizer.stored_bytes(
      w.shape, 3, 8, lora_rank=2) == 144 + 96 + 18 + 176
  # Learnable clipping gets a gradient through the rounding (STE).
  clip = quantizer.init_clipping(w.shape, 8)
  grad = jax.grad(lambda c: jnp.sum(jnp.square(
      quantizer.fake_quant(jnp.asarray(w), c, 2, 8) - w)))(clip)
  assert float(jnp.abs(grad["up"]).sum()) > 0


def test_unsupported_bits_and_groups_fail_with_one_line_errors():
  with pytest.raises(ValueError, match=r"bits=8 is not supported; allowed: "
                     r"\(2, 3, 4\)"):
    quantizer.check(8, 32)
  with pytest.raises(config_lib.ConfigError, match="bits=1 is not supported"):
    method_lib.get_method("ulb_sapr", {"bits": 1})
  with pytest.raises(ValueError, match="does not divide the input width 24"):
    quantizer.check(2, 16, 24)


@functools.cache
def _setup():
  model = transformer_lib.transformer(32, size="tiny", num_layers=2,
                                      d_model=16, num_heads=2, d_ff=32,
                                      max_len=8)
  tokens = (jnp.arange(12, dtype=jnp.int32).reshape(2, 6) * 7) % 32
  params = model.init(jax.random.PRNGKey(0), tokens)["params"]
  return model, params, tokens


def test_block_objective_matches_the_full_forward_and_saliency_term():
  model, params, tokens = _setup()
  cfg = dict(ulb_sapr._DEFAULTS, group_size=8, rank=2, aug_loss=False)
  method = method_lib.get_method("ulb_sapr", cfg)
  run = method_lib.RunInfo(0, 32, 1, 1, 1, 2)
  full = method.init(jax.random.PRNGKey(1), method_lib.InitContext(
      run, params, {}, {}, model)).params
  assert method.trainable(full)["model"]["embed"]["embedding"] is False
  batch = {"tokens": tokens, "targets": jnp.roll(tokens, -1, 1),
           "loss_mask": jnp.ones(tokens.shape)}
  ctx = method_lib.StepContext(model, run, jnp.int32(0), tokens, {}, None,
                               jax.random.PRNGKey(2), None, None)
  hp = {"lora_alpha": jnp.float32(1.0)}

  @jax.jit
  def step(p):
    blocks = ulb_sapr.block_losses(cfg, ctx, p, batch, hp)
    q = ulb_sapr.quantized_model_params(cfg, p, hp)
    h_q = model.apply({"params": q}, tokens)["hidden_states"]
    h_fp = model.apply({"params": p["model"]}, tokens)["hidden_states"]
    fisher = ulb_sapr.fisher_update(cfg, ctx, p, batch)
    ones = jax.tree.map(jnp.ones_like, fisher)
    return (blocks, jnp.mean(jnp.square(h_q[1] - h_fp[1])), fisher,
            ulb_sapr.saliency_term(cfg, p, ones), q)
  blocks, direct, fisher, reg, q = step(full)
  # LoRA B starts at 0, so the quantised kernels are Q(W) alone.
  w_err = sum(np.sum(np.square(np.asarray(q[l][m][n]["kernel"])
                               - np.asarray(params[l][m][n]["kernel"])))
              for l, m, n in ulb_sapr.targets(params))
  # Block 0's loss is the full quantised forward's first hidden-state
  # error; the saliency term with s = 1 is the squared quantisation error.
  np.testing.assert_allclose(blocks[0], direct, rtol=1e-5)
  np.testing.assert_allclose(reg, w_err, rtol=1e-5)
  # The Fisher: summed squared per-row gradients, one [out, in] per linear.
  f = fisher["layer_0"]["attn"]["q"]
  assert f.shape == (16, 16) and float(f.min()) >= 0 and float(f.sum()) > 0

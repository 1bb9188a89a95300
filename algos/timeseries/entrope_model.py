"""The EntroPE forecaster as one flax module (registered model "entrope").

Paper: EntroPE: Entropy-Guided Dynamic Patch Encoder for Time Series
Forecasting, Abeywickrama et al. 2025, arXiv:2509.26157. Official code:
github.com/Sachithx/EntroPE (`layers/EntroPE_backbone.py`, `PatchEncoder.py`,
`GlobalTransformer.py`, `FusionDecoder.py`, `models/GPT2EntropyModel.py`).

Per channel (channel independence, as the official backbone reshapes
`[b, C, L]` to `b*C` series):

  RevIN -> quantised tokens -> [entropy model -> entropy boundaries]
  -> adaptive patch encoder (token embedding, causal local layer,
     max-pooled patch queries + cross-attention to their own tokens)
  -> causal global transformer over patches
  -> fusion decoder (tokens cross-attend to their patch and the
     `decoder_window - 1` before it, then a causal layer)
  -> flatten head `[L * d] -> [H]` -> RevIN denormalisation.

Variable patch counts are jit-friendly: every series has `max_patches`
patch slots, real patches first; empty slots are masked out of the pooling
and never reach a real patch (the global transformer is causal and a token
attends only to patches up to its own), so the padding does not change the
forecast (tested). The entropy model (a small causal transformer over the
tokens, the official GPT-2 shape with RoPE instead of learned positions) is
a submodule; `mode="entropy"` runs it alone for its own training stage.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from algos.timeseries import entrope_patching as patching
from common.models import layers_lm
from common.models.registry import register_model


class RevIN(nn.Module):
  """Reversible instance normalisation (Kim et al. 2022), per channel."""
  eps: float = 1e-5
  affine: bool = True

  @nn.compact
  def __call__(self, x: jax.Array, stats, inverse: bool = False):
    """x [b, T, C]; stats (mean, std) [b, 1, C] from the context."""
    c = x.shape[-1]
    w = self.param("weight", nn.initializers.ones, (c,)) if self.affine else 1
    b = self.param("bias", nn.initializers.zeros, (c,)) if self.affine else 0
    mean, std = stats
    if not inverse:
      return (x - mean) / std * w + b
    return (x - b) / (w + self.eps**2) * std + mean


def revin_stats(x: jax.Array, eps: float = 1e-5):
  """Mean and std `[b, 1, C]` over time of `x [b, L, C]`, no gradient."""
  mean = jax.lax.stop_gradient(x.mean(1, keepdims=True))
  var = jax.lax.stop_gradient(x.var(1, keepdims=True))
  return mean, jnp.sqrt(var + eps)


class CrossAttention(nn.Module):
  """BLT's cross-attention: RMS-normed queries and keys/values, no bias."""
  dim: int
  heads: int

  @nn.compact
  def __call__(self, q_in, kv_in, mask):
    """q_in [N, Q, d], kv_in [N, K, d], mask [N, 1, Q, K] -> [N, Q, d]."""
    n, q_len, _ = q_in.shape
    hd = self.dim // self.heads
    q_in = layers_lm.RMSNorm(1e-5, jnp.float32, jnp.float32, name="norm_q")(
        q_in)
    kv_in = layers_lm.RMSNorm(1e-5, jnp.float32, jnp.float32,
                              name="norm_kv")(kv_in)
    dense = lambda name: nn.Dense(self.dim, use_bias=False, name=name)
    q = dense("wq")(q_in).reshape(n, q_len, self.heads, hd)
    k = dense("wk")(kv_in).reshape(n, -1, self.heads, hd)
    v = dense("wv")(kv_in).reshape(n, -1, self.heads, hd)
    s = jnp.einsum("nqhd,nkhd->nhqk", q, k) / math.sqrt(hd)
    s = jnp.where(mask, s, jnp.finfo(jnp.float32).min)
    out = jnp.einsum("nhqk,nkhd->nqhd", jax.nn.softmax(s, -1), v)
    return dense("wo")(out.reshape(n, q_len, self.dim))


def _stack(config, x, mask, train, name):
  """`config.num_layers` pre-norm RoPE blocks over `x [N, T, d]`."""
  positions = jnp.broadcast_to(jnp.arange(x.shape[1]), x.shape[:2])
  for i in range(config.num_layers):
    x, _, _ = layers_lm.Block(config, name=f"{name}_{i}")(
        x, positions, mask, None, 0, train, False)
  return x


def causal_mask(length: int, window: int = 0) -> jax.Array:
  """`[1, 1, T, T]` causal mask, optionally a sliding window."""
  i, j = jnp.arange(length)[:, None], jnp.arange(length)[None]
  mask = j <= i
  if window:
    mask &= i - j < window
  return mask[None, None]


class EntropyModel(nn.Module):
  """Causal next-token model over the quantised series (official: GPT-2,
  2 layers, 4 heads, width 32, LayerNorm, GELU MLP, no biases)."""
  vocab_size: int
  layers: int = 2
  heads: int = 4
  dim: int = 32
  dropout: float = 0.1

  @nn.compact
  def __call__(self, tokens: jax.Array, train: bool) -> jax.Array:
    """tokens [N, L] -> next-token logits [N, L, V]."""
    cfg = layers_lm.TransformerConfig(
        vocab_size=self.vocab_size, num_layers=self.layers, d_model=self.dim,
        num_heads=self.heads, d_ff=4 * self.dim, max_len=tokens.shape[1],
        norm="layernorm", norm_eps=1e-5, ffn="gelu", dropout=self.dropout)
    h = nn.Embed(self.vocab_size, self.dim, name="embed")(tokens)
    h = _stack(cfg, h, causal_mask(tokens.shape[1]), train, "block")
    h = nn.LayerNorm(epsilon=1e-5, use_bias=False, name="norm")(h)
    return nn.Dense(self.vocab_size, use_bias=False, name="lm_head")(h)


@register_model("entrope")
class EntroPE(nn.Module):
  """EntroPE (or the same network on fixed-size patches).

  Attributes:
    num_classes: unused (registry signature).
    horizon: forecast length H.
    patching: "entropy" (the entropy model's boundaries) or "static"
      (boundaries every `patch_size` steps: the fixed-size baseline).
    rule: "global" (H_t above its per-series quantile) or "relative"
      (H_t - H_{t-1} above its quantile: the official `monotonicity`).
    max_patch_length: longer patches are split (official splitting).
    max_patches: patch slots per series (static; later patches merge into
      the last slot, reported as `overflow`).
  """
  num_classes: int = 0
  horizon: int = 96
  vocab_size: int = 256
  quant_low: float = -2.5
  quant_high: float = 2.5
  d_model: int = 16
  heads: int = 2
  global_layers: int = 2
  d_ff: int = 64
  dropout: float = 0.1
  head_dropout: float = 0.1
  decoder_window: int = 96
  local_window: int = 96
  patching: str = "entropy"
  rule: str = "global"
  patch_size: int = 8
  max_patch_length: int = 32
  max_patches: int = 32
  entropy_layers: int = 2
  entropy_heads: int = 4
  entropy_dim: int = 32
  revin: bool = True
  affine: bool = True
  dtype: Any = jnp.float32

  def _local_config(self, layers: int) -> layers_lm.TransformerConfig:
    return layers_lm.TransformerConfig(
        vocab_size=self.vocab_size, num_layers=layers, d_model=self.d_model,
        num_heads=self.heads, d_ff=self.d_ff, max_len=4096,
        dropout=self.dropout, norm_eps=1e-5)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, *,
               mode: str = "forecast", quantile: Any = 0.95):
    """x [b, L, C] context. `quantile`: the boundary threshold (traced).

    Returns (mode "forecast") `forecast [b, H, C]`, `starts [b, C, L]`
    bool (a patch starts at t), `entropy [b, C, L]`, `num_patches [b, C]`,
    `overflow [b, C]`; (mode "entropy") `entropy_logits [b*C, L, V]` and
    `tokens [b*C, L]`.
    """
    b, length, c = x.shape
    stats = revin_stats(x)
    rev = RevIN(affine=self.affine, name="revin")
    z = rev(x, stats) if self.revin else x
    series = jnp.swapaxes(z, 1, 2).reshape(b * c, length)
    tokens = patching.quantize(series, self.vocab_size, self.quant_low,
                               self.quant_high)
    ent_model = EntropyModel(self.vocab_size, self.entropy_layers,
                             self.entropy_heads, self.entropy_dim,
                             name="entropy_model")
    if mode == "entropy":
      return {"entropy_logits": ent_model(tokens, train), "tokens": tokens}
    if self.is_initializing():
      ent_model(tokens, False)
    if self.patching == "entropy":
      logits = jax.lax.stop_gradient(ent_model(tokens, False))
      ent = patching.token_entropy(logits)
      starts = patching.entropy_starts(ent, quantile, self.rule,
                                       self.max_patch_length)
    else:
      ent = jnp.zeros((b * c, length))
      starts = patching.static_starts(b * c, length, self.patch_size)
    pid, member, overflow = patching.patch_membership(starts,
                                                      self.max_patches)
    h = self.encode_and_decode(tokens, pid, member, train)  # [N, L, d]
    h = nn.Dropout(self.head_dropout, deterministic=not train)(
        h.reshape(b * c, length * self.d_model))
    y = nn.Dense(self.horizon, name="head")(h)               # [N, H]
    y = jnp.swapaxes(y.reshape(b, c, self.horizon), 1, 2)
    forecast = rev(y, stats, inverse=True) if self.revin else y
    per = lambda a: a.reshape(b, c, *a.shape[1:])
    return {"forecast": forecast, "starts": per(starts), "entropy": per(ent),
            "num_patches": per(member.any(-1).sum(-1)),
            "overflow": per(overflow)}

  def encode_and_decode(self, tokens, pid, member, train):
    """Tokens [N, L], patch ids [N, L], membership [N, P, L] -> [N, L, d]."""
    d, length = self.d_model, tokens.shape[1]
    cfg1 = self._local_config(1)
    # Adaptive patch encoder.
    h = nn.Embed(self.vocab_size, d, name="tok_embed")(tokens)
    h = nn.Dropout(self.dropout, deterministic=not train)(h)
    h = _stack(cfg1, h, causal_mask(length, self.local_window), train,
               "encoder")
    valid = member.any(-1)                                   # [N, P]
    pooled = jnp.where(member[..., None], h[:, None], -jnp.inf).max(2)
    pooled = jnp.where(valid[..., None], pooled, 0.0)        # [N, P, d]
    patches = pooled + CrossAttention(d, self.heads, name="encoder_cross")(
        pooled, h, member[:, None])
    # Global transformer over patches (causal: real patches come first).
    g = nn.Dropout(self.dropout, deterministic=not train)(patches)
    g = _stack(self._local_config(self.global_layers), g,
               causal_mask(member.shape[1]), train, "global")
    # Fusion decoder: token t attends to patches pid_t - w + 1 .. pid_t.
    k = jnp.arange(member.shape[1])[None, None]
    cross = (k <= pid[..., None]) & (pid[..., None] < k + self.decoder_window)
    hd = nn.Dropout(self.dropout, deterministic=not train)(h)
    hd = hd + CrossAttention(d, self.heads, name="decoder_cross")(
        hd, g, cross[:, None])
    hd = _stack(cfg1, hd, causal_mask(length, self.local_window), train,
                "decoder")
    hd = layers_lm.RMSNorm(1e-5, jnp.float32, jnp.float32,
                           name="decoder_norm")(hd)
    return nn.Dropout(self.dropout, deterministic=not train)(hd)

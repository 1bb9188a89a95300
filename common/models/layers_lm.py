"""The transformer's configuration, size presets and layers (attention with
RoPE, grouped-query heads and a KV cache; the FFNs; the norms). The model
itself is `common.models.transformer`."""

from __future__ import annotations

from collections.abc import Mapping
import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from common import config as config_lib
from common.models import normalized_dense

_CHOICES = {"norm": ("rmsnorm", "layernorm", "none"),
            "ffn": ("swiglu", "gelu", "linear"),
            "dtype": ("float32", "bfloat16", "float16"),
            "param_dtype": ("float32", "bfloat16", "float16"),
            "ffn_norm": normalized_dense.NORMS}


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
  """A decoder-only transformer's architecture.

  `num_kv_heads=0` means one KV head per query head (plain multi-head
  attention); `head_dim=0` means `d_model // num_heads`. `logit_softcap`
  > 0 soft-caps the logits to `cap * tanh(logits / cap)`. `remat`
  recomputes each block's activations in the backward pass.
  `rope_scaling` is empty (plain RoPE) or Llama 3's frequency scaling
  `(factor, low_freq_factor, high_freq_factor, original_max_len)`.
  `ffn_norm` "weight" / "spectral" reparameterises the FFN kernels
  (`normalized_dense`) and `ffn_scale` multiplies the FFN output by a
  learnable scalar `mlp/ffn_scale` (init 1): the LayerNorm alternatives of
  softmax-only models (entropy-guided attention).
  """
  vocab_size: int = 259
  num_layers: int = 2
  d_model: int = 64
  num_heads: int = 4
  num_kv_heads: int = 0
  d_ff: int = 128
  max_len: int = 256
  norm: str = "rmsnorm"
  norm_eps: float = 1e-6
  ffn: str = "swiglu"
  tie_embeddings: bool = True
  rope_theta: float = 10000.0
  qkv_bias: bool = False
  dropout: float = 0.0
  learn_temperature: bool = False
  dtype: str = "float32"
  param_dtype: str = "float32"
  head_dim: int = 0
  logit_softcap: float = 0.0
  init_std: float = 0.02
  remat: bool = False
  rope_scaling: tuple[float, ...] = ()
  ffn_norm: str = "none"
  ffn_scale: bool = False

  def __post_init__(self):
    # Lists (from JSON) become tuples: the config must stay hashable.
    object.__setattr__(self, "rope_scaling", tuple(self.rope_scaling))
    if self.rope_scaling and len(self.rope_scaling) != 4:
      raise config_lib.ConfigError(
          f"transformer rope_scaling={self.rope_scaling}; allowed: () or "
          "(factor, low_freq_factor, high_freq_factor, original_max_len)")
    for key, allowed in _CHOICES.items():
      if getattr(self, key) not in allowed:
        raise config_lib.ConfigError(
            f"transformer {key}={getattr(self, key)!r}; allowed: {allowed}")
    for key in ("vocab_size", "num_layers", "d_model", "num_heads", "d_ff",
                "max_len"):
      if getattr(self, key) < 1:
        raise config_lib.ConfigError(
            f"transformer {key}={getattr(self, key)} must be >= 1")
    if self.num_heads % self.kv_heads:
      raise config_lib.ConfigError(
          f"transformer num_heads={self.num_heads} is not a multiple of "
          f"num_kv_heads={self.kv_heads}")
    if not self.head_dim and self.d_model % self.num_heads:
      raise config_lib.ConfigError(
          f"transformer d_model={self.d_model} is not a multiple of "
          f"num_heads={self.num_heads}; set head_dim")
    if self.head_size % 2:
      raise config_lib.ConfigError(
          f"transformer head size {self.head_size} must be even (RoPE)")
    if not 0.0 <= self.dropout < 1.0:
      raise config_lib.ConfigError(
          f"transformer dropout={self.dropout}; allowed: [0, 1)")

  @property
  def kv_heads(self) -> int:
    return self.num_kv_heads or self.num_heads

  @property
  def head_size(self) -> int:
    return self.head_dim or self.d_model // self.num_heads

  @classmethod
  def from_dict(cls, d: Mapping[str, Any]) -> TransformerConfig:
    """From a plain dict; an unknown key is a one-line ConfigError."""
    names = [f.name for f in dataclasses.fields(cls)]
    for key in d:
      if key not in names:
        raise config_lib.ConfigError(
            f"unknown transformer config key {key!r}; allowed: {names}")
    return cls(**d)

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)


TRANSFORMER_SIZES: dict[str, TransformerConfig] = {
    # ~0.1M parameters with the byte vocabulary: CPU tests.
    "tiny": TransformerConfig(),
    # ~1.8M parameters: CPU studies.
    "small": TransformerConfig(num_layers=4, d_model=192, num_heads=6,
                               d_ff=512, max_len=512),
    # GPT-2 small's shape (RoPE and no biases instead of learned positions).
    "gpt2_124m": TransformerConfig(
        vocab_size=50257, num_layers=12, d_model=768, num_heads=12,
        d_ff=3072, max_len=1024, norm="layernorm", norm_eps=1e-5,
        ffn="gelu", dropout=0.1),
    # Llama 3.2 1B's shape.
    "llama_1b": TransformerConfig(
        vocab_size=128256, num_layers=16, d_model=2048, num_heads=32,
        num_kv_heads=8, d_ff=8192, max_len=131072, norm_eps=1e-5,
        rope_theta=500000.0, rope_scaling=(32.0, 1.0, 4.0, 8192)),
    # Qwen2.5-0.5B's shape.
    "qwen2_0.5b": TransformerConfig(
        vocab_size=151936, num_layers=24, d_model=896, num_heads=14,
        num_kv_heads=2, d_ff=4864, max_len=32768, rope_theta=1000000.0,
        qkv_bias=True),
}


def config_from_kwargs(size: str = "tiny", **fields: Any) -> TransformerConfig:
  """The `size` preset with `fields` replaced (one-line errors)."""
  if size not in TRANSFORMER_SIZES:
    raise config_lib.ConfigError(
        f"unknown transformer size {size!r}; allowed: "
        f"{sorted(TRANSFORMER_SIZES)}")
  base = TRANSFORMER_SIZES[size].to_dict()
  base.update(fields)
  return TransformerConfig.from_dict(base)


def make_norm(c: TransformerConfig, name: str):
  """The pre-norm of `c` as a callable (identity for norm="none")."""
  dtype, pdtype = jnp.dtype(c.dtype), jnp.dtype(c.param_dtype)
  if c.norm == "rmsnorm":
    return RMSNorm(c.norm_eps, dtype, pdtype, name=name)
  if c.norm == "layernorm":
    return nn.LayerNorm(epsilon=c.norm_eps, dtype=dtype, param_dtype=pdtype,
                        name=name)
  return lambda x: x


class RMSNorm(nn.Module):
  """x / rms(x) * scale, the statistics in float32 (as Llama)."""
  eps: float
  dtype: Any
  param_dtype: Any

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    scale = self.param("scale", nn.initializers.ones, (x.shape[-1],),
                       self.param_dtype)
    x32 = x.astype(jnp.float32)
    y = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, -1, keepdims=True) + self.eps)
    return y.astype(self.dtype) * scale.astype(self.dtype)


def rope_frequencies(c: TransformerConfig) -> jax.Array:
  """The `[head_size / 2]` RoPE inverse frequencies, with Llama 3's
  scaling when configured (long wavelengths slowed by `factor`, short ones
  kept, a smooth blend in between)."""
  hd = c.head_size
  inv_freq = 1.0 / c.rope_theta ** (jnp.arange(0, hd, 2, jnp.float32) / hd)
  if not c.rope_scaling:
    return inv_freq
  factor, low, high, original = c.rope_scaling
  wavelen = 2 * math.pi / inv_freq
  scaled = jnp.where(wavelen > original / low, inv_freq / factor, inv_freq)
  smooth = (original / wavelen - low) / (high - low)
  blended = (1 - smooth) * scaled / factor + smooth * scaled
  medium = (wavelen >= original / high) & (wavelen <= original / low)
  return jnp.where(medium, blended, scaled)


def apply_rope(x: jax.Array, positions: jax.Array,
               inv_freq: jax.Array) -> jax.Array:
  """Rotary embedding of `x` `[B, T, H, hd]` at `positions` `[B, T]`, the
  two halves of each head rotated together (the Llama/HF layout)."""
  half = x.shape[-1] // 2
  angle = positions[..., None].astype(jnp.float32) * inv_freq
  cos, sin = jnp.cos(angle)[:, :, None], jnp.sin(angle)[:, :, None]
  x1, x2 = x[..., :half].astype(jnp.float32), x[..., half:].astype(
      jnp.float32)
  return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin],
                         -1).astype(x.dtype)


def _dense(c: TransformerConfig, features: int, name: str,
           use_bias: bool = False, std: float | None = None) -> nn.Dense:
  return nn.Dense(features, use_bias=use_bias, dtype=jnp.dtype(c.dtype),
                  param_dtype=jnp.dtype(c.param_dtype),
                  kernel_init=nn.initializers.normal(std or c.init_std),
                  name=name)


def _residual_std(c: TransformerConfig) -> float:
  # GPT-2: projections into the residual stream scaled by 1/sqrt(2L).
  return c.init_std / math.sqrt(2 * c.num_layers)


class Attention(nn.Module):
  """Causal self-attention with RoPE, grouped-query heads and a KV cache."""
  config: TransformerConfig

  @nn.compact
  def __call__(self, x, positions, mask, cache, index, train,
               return_attention):
    """x [B, T, D]; mask [B|1, 1, T, S] bool; cache None or {"k", "v"}
    [B, S, KV, hd] written at slot `index`. Returns (out [B, T, D],
    probs [B, H, T, S] or None, updated cache or None)."""
    c = self.config
    b, t, _ = x.shape
    h, kv, hd = c.num_heads, c.kv_heads, c.head_size
    q = _dense(c, h * hd, "q", c.qkv_bias)(x).reshape(b, t, h, hd)
    k = _dense(c, kv * hd, "k", c.qkv_bias)(x).reshape(b, t, kv, hd)
    v = _dense(c, kv * hd, "v", c.qkv_bias)(x).reshape(b, t, kv, hd)
    inv_freq = rope_frequencies(c)
    q = apply_rope(q, positions, inv_freq)
    k = apply_rope(k, positions, inv_freq)
    if cache is not None:
      k = jax.lax.dynamic_update_slice(cache["k"], k.astype(cache["k"].dtype),
                                       (0, index, 0, 0))
      v = jax.lax.dynamic_update_slice(cache["v"], v.astype(cache["v"].dtype),
                                       (0, index, 0, 0))
      cache = {"k": k, "v": v}
    s = k.shape[1]
    # Query head j * (h // kv) + g shares KV head j (as HF's repeat_kv).
    qg = q.reshape(b, t, kv, h // kv, hd)
    scores = jnp.einsum("btkgd,bskd->bkgts", qg, k.astype(q.dtype))
    scores = scores.reshape(b, h, t, s).astype(jnp.float32)
    scores = scores / math.sqrt(hd)
    if c.learn_temperature:
      log_temp = self.param("log_temperature", nn.initializers.zeros, (h,),
                            jnp.dtype(c.param_dtype))
      scores = scores * jnp.exp(-log_temp.astype(jnp.float32))[:, None, None]
    scores = jnp.where(mask, scores, jnp.finfo(jnp.float32).min)
    probs = jax.nn.softmax(scores, axis=-1)
    dropped = nn.Dropout(c.dropout, deterministic=not train)(probs)
    out = jnp.einsum("bkgts,bskd->btkgd",
                     dropped.reshape(b, kv, h // kv, t, s).astype(q.dtype),
                     v.astype(q.dtype)).reshape(b, t, h * hd)
    out = _dense(c, c.d_model, "o", std=_residual_std(c))(out)
    return out, (probs if return_attention else None), cache


class Mlp(nn.Module):
  """The FFN: SwiGLU (down(silu(gate x) * up x)), GELU or linear; with
  `ffn_norm` its kernels weight- or spectrally normalised, with
  `ffn_scale` its output times a learnable scalar."""
  config: TransformerConfig

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = self.config
    dense = _dense
    if c.ffn_norm != "none":
      dense = lambda c, n, name, std=None: normalized_dense.NormalizedDense(
          n, c.ffn_norm, jnp.dtype(c.dtype), jnp.dtype(c.param_dtype),
          nn.initializers.normal(std or c.init_std), name=name)
    up = dense(c, c.d_ff, "up")(x)
    if c.ffn == "swiglu":
      up = nn.silu(dense(c, c.d_ff, "gate")(x)) * up
    elif c.ffn == "gelu":
      up = nn.gelu(up, approximate=True)
    out = dense(c, c.d_model, "down", std=_residual_std(c))(up)
    if c.ffn_scale:
      out = out * self.param("ffn_scale", nn.initializers.ones, (),
                             jnp.dtype(c.param_dtype)).astype(out.dtype)
    return out


class Block(nn.Module):
  """Pre-norm block: x + attn(norm x), then x + mlp(norm x)."""
  config: TransformerConfig

  @nn.compact
  def __call__(self, x, positions, mask, cache, index, train,
               return_attention):
    c = self.config
    drop = nn.Dropout(c.dropout, deterministic=not train)
    h, probs, cache = Attention(c, name="attn")(
        make_norm(c, "attn_norm")(x), positions, mask, cache, index, train,
        return_attention)
    x = x + drop(h)
    x = x + drop(Mlp(c, name="mlp")(make_norm(c, "mlp_norm")(x)))
    return x, probs, cache

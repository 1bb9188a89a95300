"""T-JEPA's networks: feature tokenizer, tabular encoder, predictor.

Paper: H. Thimonier, J. L. De Melo Costa, F. Popineau, A. Rimmel, B.-L.
Doan, "T-JEPA: Augmentation-Free Self-Supervised Learning for Tabular
Data", ICLR 2025, arXiv 2410.05016 (id recalled, not checked offline).
Official code: github.com/jose-melo/t-jepa (PyTorch; read, not copied):
`src/encoder.py` (`Tokenizer`, `Encoder`, `TabularEncoder`),
`src/predictors.py` (`TransformerPredictor`), `src/utils/train_utils.py`
(`PositionalEncoding`, `get_1d_sincos_pos_embed`), `src/tjepa_transformer.py`
(PyTorch's post-norm `TransformerEncoderLayer`).

Input `x [b, D]`: the numerical columns first, then the categorical ones as
integer codes (`cat_cardinalities`, one per categorical column, the last
columns). The tokenizer gives one token per feature (`w_j x_j + b_j`, or
`E_j[code] + b_j`) after `reg_tokens` learned regularisation tokens (the
official `n_cls_tokens`: tokenizer rows fed with a constant 1, no bias), so
the sequence has S = R + D tokens; the sinusoidal positional encoding of
the official `PositionalEncoding` (base 100) is added to all S. Encoder:
post-norm transformer layers, then LayerNorm -> Dense -> LayerNorm.

Called without positions it encodes the whole sequence and returns
`features [b, S * H]` (the flattened embedding the official downstream
models read). Called with `context_pos [b, Nc]` / `target_pos [b, P, Nt]`
(sequence positions, padded; `*_valid` marks the real ones) it encodes
the context tokens only and returns the predictor's estimates `[b, P, Nt,
H]` of the target tokens' embeddings.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from common.models import registry

_TRUNC = nn.initializers.truncated_normal(0.02)   # official trunc_normal_


def sincos_table(length: int, dim: int, base: float) -> np.ndarray:
  """`[length, dim]` sinusoidal table.

  `base=100`: the encoder's `PositionalEncoding` (sin / cos interleaved);
  `base=10000`: the predictor's `get_1d_sincos_pos_embed` (sin half, then
  cos half).
  """
  pos = np.arange(length, dtype=np.float64)[:, None]
  if base == 100.0:
    div = np.exp(np.arange(0, dim, 2) * (-math.log(100.0) / dim))
    table = np.zeros((length, dim))
    table[:, 0::2] = np.sin(pos * div)
    table[:, 1::2] = np.cos(pos * div[: dim // 2])
    return table.astype(np.float32)
  omega = 1.0 / base ** (np.arange(dim // 2) / (dim / 2.0))
  out = pos * omega
  return np.concatenate([np.sin(out), np.cos(out)], 1).astype(np.float32)


class Block(nn.Module):
  """PyTorch's post-norm `TransformerEncoderLayer` (ReLU), with a key mask."""
  heads: int
  ffn: int
  dropout: float

  @nn.compact
  def __call__(self, x: jax.Array, key_valid: jax.Array | None,
               train: bool) -> jax.Array:
    b, n, d = x.shape
    hd = d // self.heads
    drop = nn.Dropout(self.dropout, deterministic=not train)
    qkv = nn.Dense(3 * d, kernel_init=nn.initializers.xavier_uniform(),
                   name="in_proj")(x).reshape(b, n, 3, self.heads, hd)
    q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
    logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(hd)
    if key_valid is not None:
      logits = jnp.where(key_valid[:, None, None, :], logits, -1e30)
    att = drop(jax.nn.softmax(logits, -1))
    a = jnp.einsum("bhqk,bkhd->bqhd", att, v).reshape(b, n, d)
    a = nn.Dense(d, kernel_init=_TRUNC, name="out_proj")(a)
    x = nn.LayerNorm(1e-5, name="norm1")(x + drop(a))
    f = nn.Dense(self.ffn, kernel_init=_TRUNC, name="linear1")(x)
    f = nn.Dense(d, kernel_init=_TRUNC, name="linear2")(
        drop(nn.relu(f)))
    return nn.LayerNorm(1e-5, name="norm2")(x + drop(f))


class TabularEncoder(nn.Module):
  """Blocks -> LayerNorm -> Dense -> LayerNorm (official TabularEncoder)."""
  layers: int
  heads: int
  ffn: int
  dropout: float

  @nn.compact
  def __call__(self, x, key_valid, train):
    for i in range(self.layers):
      x = Block(self.heads, self.ffn, self.dropout, name=f"layer{i}")(
          x, key_valid, train)
    drop = nn.Dropout(self.dropout, deterministic=not train)
    x = nn.LayerNorm(1e-5, name="layernorm1")(drop(x))
    x = nn.Dense(x.shape[-1], kernel_init=_TRUNC, name="fc")(x)
    return nn.LayerNorm(1e-5, name="layernorm2")(drop(x))


def gather_tokens(tokens: jax.Array, pos: jax.Array) -> jax.Array:
  """`tokens [b, S, H]` at `pos [b, ...]` -> `[b, ..., H]`."""
  flat = pos.reshape(pos.shape[0], -1)
  out = jnp.take_along_axis(tokens, flat[..., None], axis=1)
  return out.reshape(*pos.shape, tokens.shape[-1])


@registry.register_model("tjepa_net")
class TJEPANet(nn.Module):
  """Tokenizer + encoder (params["encoder"]) + predictor (params["predictor"]).

  Attributes:
    num_classes: unused by the network (returned logits are zeros).
    num_features: D, columns of `x`.
    cat_cardinalities: cardinality of each categorical column (the last
      `len(...)` columns of `x`).
    hidden, layers, heads, ffn, dropout: the encoder (official
      `model_dim_hidden`, `model_num_layers`, `model_num_heads`,
      `model_dim_feedforward`, `model_dropout_prob`).
    reg_tokens: R regularisation tokens (official `n_cls_tokens`).
    pred_dim, pred_layers, pred_heads, pred_ffn, pred_dropout: predictor.
    feature_type_embedding: add a learned numerical/categorical embedding
      (only with both kinds of column, as the official code).
  """
  num_classes: int
  num_features: int = 0   # required: set by the config (model.kwargs)
  cat_cardinalities: tuple[int, ...] = ()
  hidden: int = 64
  layers: int = 4
  heads: int = 8
  ffn: int = 256
  dropout: float = 0.0
  reg_tokens: int = 1
  pred_dim: int = 64
  pred_layers: int = 2
  pred_heads: int = 4
  pred_ffn: int = 256
  pred_dropout: float = 0.0
  feature_type_embedding: bool = False
  dtype: Any = jnp.float32

  def setup(self):
    for name, dim, heads in (("hidden", self.hidden, self.heads),
                             ("pred_dim", self.pred_dim, self.pred_heads)):
      if dim % 2 or dim % heads:
        raise ValueError(f"tjepa_net: {name}={dim} must be even and divisible "
                         f"by its number of heads ({heads})")
    if not 0 <= len(self.cat_cardinalities) < self.num_features:
      raise ValueError(f"tjepa_net: {len(self.cat_cardinalities)} categorical "
                       f"columns of num_features={self.num_features}; allowed "
                       "0 .. num_features - 1")
    self.encoder = _Encoder(self.num_features, tuple(self.cat_cardinalities),
                            self.hidden, self.layers, self.heads, self.ffn,
                            self.dropout, self.reg_tokens,
                            self.feature_type_embedding)
    self.predictor = _Predictor(self.reg_tokens + self.num_features,
                                self.pred_dim, self.pred_layers,
                                self.pred_heads, self.pred_ffn,
                                self.pred_dropout)

  @property
  def seq_len(self) -> int:
    return self.reg_tokens + self.num_features

  def __call__(self, x: jax.Array, train: bool = False,
               context_pos: jax.Array | None = None,
               context_valid: jax.Array | None = None,
               target_pos: jax.Array | None = None,
               target_valid: jax.Array | None = None) -> dict[str, jax.Array]:
    """Full encoding, or (with positions) the predicted target embeddings.

    Args:
      x: `[b, D]` float (categorical codes as whole numbers).
      train: dropout on.
      context_pos, context_valid: `[b, Nc]` int / bool.
      target_pos, target_valid: `[b, P, Nt]` int / bool.

    Returns:
      Full: `features [b, S * H]`, `tokens [b, S, H]`, `logits [b, C]`
      (zeros). Masked: `prediction [b, P, Nt, H]`, `context [b, Nc, H]`.
    """
    tokens = self.encoder.embed(x.astype(jnp.float32))
    if context_pos is None:
      h = self.encoder.transform(tokens, None, train)
      if self.is_initializing():   # create the predictor's parameters too
        b = x.shape[0]
        pos = jnp.zeros((b, 1), jnp.int32)
        self.predictor(h[:, :1], pos, pos > -1, pos[:, None], pos[:, None] > -1,
                       False)
      return {"tokens": h, "features": h.reshape(h.shape[0], -1),
              "logits": jnp.zeros((h.shape[0], self.num_classes))}
    z = self.encoder.transform(gather_tokens(tokens, context_pos),
                               context_valid, train)
    pred = self.predictor(z, context_pos, context_valid, target_pos,
                          target_valid, train)
    return {"prediction": pred, "context": z}


class _Encoder(nn.Module):
  """Feature tokenizer + positional encoding + TabularEncoder."""
  num_features: int
  cat_cardinalities: tuple[int, ...]
  hidden: int
  layers: int
  heads: int
  ffn: int
  dropout: float
  reg_tokens: int
  feature_type_embedding: bool

  def setup(self):
    n_cat = len(self.cat_cardinalities)
    n_num = self.num_features - n_cat
    bound = 1.0 / math.sqrt(self.hidden)   # kaiming_uniform(a=sqrt(5))
    uni = lambda k, s: jax.random.uniform(k, s, jnp.float32, -bound, bound)
    self.n_num = n_num
    self.weight = self.param("weight", uni, (self.reg_tokens + n_num,
                                             self.hidden))
    self.bias = self.param("bias", uni, (self.num_features, self.hidden))
    self.cat_embed = [self.param(f"cat_embed{i}", _TRUNC, (c, self.hidden))
                      for i, c in enumerate(self.cat_cardinalities)]
    if self.feature_type_embedding and n_cat and n_num:
      self.type_embed = self.param("type_embed", _TRUNC, (2, self.hidden))
    self.body = TabularEncoder(self.layers, self.heads, self.ffn,
                               self.dropout)

  def embed(self, x: jax.Array) -> jax.Array:
    """`x [b, D]` -> tokens `[b, R + D, H]` (with positional encoding)."""
    b = x.shape[0]
    ones = jnp.ones((b, self.reg_tokens), x.dtype)
    num = jnp.concatenate([ones, x[:, :self.n_num]], 1)
    tok = self.weight[None] * num[:, :, None]
    cats = [table[x[:, self.n_num + i].astype(jnp.int32)]
            for i, table in enumerate(self.cat_embed)]
    if cats:
      tok = jnp.concatenate([tok, jnp.stack(cats, 1)], 1)
    bias = jnp.concatenate([jnp.zeros((self.reg_tokens, self.hidden)),
                            self.bias], 0)
    tok = tok + bias[None]
    s = tok.shape[1]
    tok = tok + sincos_table(s, self.hidden, 100.0)[None]
    if hasattr(self, "type_embed"):
      types = np.array([0] * self.n_num + [1] * len(self.cat_embed))
      extra = jnp.concatenate([jnp.zeros((self.reg_tokens, self.hidden)),
                               self.type_embed[types]], 0)
      tok = tok + extra[None]
    return tok

  def transform(self, tokens, key_valid, train):
    return self.body(tokens, key_valid, train)

  def __call__(self, x, train=False):
    return self.transform(self.embed(x), None, train)


class _Predictor(nn.Module):
  """The official `TransformerPredictor`: context + mask tokens -> targets."""
  seq_len: int
  dim: int
  layers: int
  heads: int
  ffn: int
  dropout: float

  @nn.compact
  def __call__(self, z, context_pos, context_valid, target_pos, target_valid,
               train):
    b, p, nt = target_pos.shape
    hidden = z.shape[-1]
    table = jnp.asarray(sincos_table(self.seq_len, self.dim, 10000.0))
    x = nn.Dense(self.dim, kernel_init=_TRUNC, name="predictor_emb")(z)
    x = x + table[context_pos]
    mask_token = self.param("mask_token", _TRUNC, (self.dim,))
    queries = mask_token + table[target_pos]                 # [b, P, Nt, d]
    nc = x.shape[1]
    x = jnp.broadcast_to(x[:, None], (b, p, nc, self.dim))
    seq = jnp.concatenate([x, queries], 2).reshape(b * p, nc + nt, self.dim)
    valid = jnp.concatenate(
        [jnp.broadcast_to(context_valid[:, None], (b, p, nc)), target_valid],
        2).reshape(b * p, nc + nt)
    seq = TabularEncoder(self.layers, self.heads, self.ffn, self.dropout,
                         name="transformer")(seq, valid, train)
    seq = nn.LayerNorm(1e-5, name="predictor_norm")(seq)[:, nc:]
    out = nn.Dense(hidden, kernel_init=_TRUNC, name="predictor_proj")(seq)
    return out.reshape(b, p, nt, hidden)

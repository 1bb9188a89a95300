"""A decoder-only transformer: the language model of the LM papers.

One flax module covers the tiny CPU models of the studies and the
Llama/Qwen2 architecture exactly (so `common.convert.hf_checkpoint` loads
real checkpoints into it): RoPE, pre-norm with RMSNorm, LayerNorm or no
normalisation at all, SwiGLU/GELU/linear FFN, grouped-query attention,
optional qkv bias (Qwen2), optional learnable per-head attention temperature
(entropy-guided attention), dropout, tied or untied embeddings, and
segment-aware causal attention for packed documents. A KV cache (see
`init_cache`) makes decoding incremental (`common.models.decoding`).

Parameter tree (what the checkpoint converter writes):
  embed/embedding [V, D]; layer_{i}/{attn_norm,mlp_norm}/scale (+bias for
  layernorm); layer_{i}/attn/{q,k,v}/kernel [D, H*hd] (+bias when qkv_bias),
  layer_{i}/attn/o/kernel [H*hd, D], layer_{i}/attn/log_temperature [H] (when
  learned); layer_{i}/mlp/{gate,up}/kernel [D, F], layer_{i}/mlp/down/kernel
  [F, D]; final_norm/scale; head/kernel [D, V] (untied only).
"""

from __future__ import annotations

from collections.abc import Mapping
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from common.models import layers_lm
from common.models import registry

PyTree = Any
TransformerConfig = layers_lm.TransformerConfig
TRANSFORMER_SIZES = layers_lm.TRANSFORMER_SIZES
config_from_kwargs = layers_lm.config_from_kwargs


def init_cache(config: TransformerConfig, batch: int,
               max_len: int) -> dict[str, Any]:
  """An empty KV cache for `batch` rows of up to `max_len` tokens.

  Returns:
    {"layers": L x {"k", "v": [batch, max_len, num_kv_heads, head_dim]} in
    the compute dtype, "segment_ids": [batch, max_len] int32 (0 = empty or
    padding; a query attends only keys of its own segment), "index": int32
    scalar, the next slot to write}.
  """
  if max_len > config.max_len:
    raise ValueError(
        f"cache length {max_len} exceeds the model's max_len "
        f"{config.max_len}; allowed: at most {config.max_len}")
  shape = (batch, max_len, config.kv_heads, config.head_size)
  dtype = jnp.dtype(config.dtype)
  layer = lambda: {"k": jnp.zeros(shape, dtype), "v": jnp.zeros(shape, dtype)}
  return {"layers": tuple(layer() for _ in range(config.num_layers)),
          "segment_ids": jnp.zeros((batch, max_len), jnp.int32),
          "index": jnp.zeros((), jnp.int32)}


def unembedding(params: PyTree) -> jax.Array:
  """The classifier matrix `[V, D]`: the untied head's transpose, else the
  tied token embedding. logits = features @ unembedding(params).T."""
  if "head" in params:
    return params["head"]["kernel"].T
  return params["embed"]["embedding"]


def positions_in_segment(segment_ids: jax.Array) -> jax.Array:
  """`[B, T]` position of each token within its (contiguous) segment."""
  t = jnp.arange(segment_ids.shape[1], dtype=jnp.int32)[None]
  starts = jnp.concatenate(
      [jnp.ones_like(segment_ids[:, :1], bool),
       segment_ids[:, 1:] != segment_ids[:, :-1]], axis=1)
  return t - jax.lax.cummax(jnp.where(starts, t, 0), axis=1)


def attention_layout(shape: tuple[int, int], positions: jax.Array | None,
                     segment_ids: jax.Array | None,
                     cache: Mapping[str, Any] | None):
  """(positions [B, T], mask [B|1, 1, T, S] bool, key segment ids [B, S] or
  None) of `shape` = (B, T) new tokens (see `Transformer.__call__`)."""
  batch, length = shape
  if cache is None:
    index, key_segments = 0, segment_ids
    if positions is None and segment_ids is not None:
      positions = positions_in_segment(segment_ids)
  else:
    index = cache["index"]
    if segment_ids is None:
      segment_ids = jnp.ones((batch, length), jnp.int32)
    key_segments = jax.lax.dynamic_update_slice(
        cache["segment_ids"], segment_ids.astype(jnp.int32), (0, index))
  if positions is None:
    positions = jnp.broadcast_to(index + jnp.arange(length), (batch, length))
  query_slot = index + jnp.arange(length)
  key_slot = jnp.arange(length if cache is None else
                        cache["segment_ids"].shape[1])
  mask = (key_slot[None, :] <= query_slot[:, None])[None, None]
  if key_segments is not None:
    mask = mask & (segment_ids[:, None, :, None] ==
                   key_segments[:, None, None, :])
  return positions, mask, key_segments


class Transformer(nn.Module):
  """Decoder-only transformer (see the module docstring).

  Attributes:
    config: the architecture (`TransformerConfig`).
  """

  config: TransformerConfig

  @property
  def num_classes(self) -> int:
    """The vocabulary size (the zoo's common attribute)."""
    return self.config.vocab_size

  @nn.compact
  def __call__(self, tokens: jax.Array | Mapping[str, jax.Array],
               train: bool = False, *, positions: jax.Array | None = None,
               segment_ids: jax.Array | None = None,
               cache: Mapping[str, Any] | None = None,
               return_attention: bool = False,
               compute_logits: bool = True) -> dict[str, Any]:
    """Applies the model.

    Args:
      tokens: `[B, T]` int32 token ids, or a dict with "tokens" and
        optionally "positions" and "segment_ids" (a token batch handed
        whole to `ctx.forward`).
      train: dropout on.
      positions: `[B, T]` int32 RoPE positions; default the position within
        the segment (or `cache index + t` with a cache).
      segment_ids: `[B, T]` int32 document ids (0 = padding); a token
        attends only earlier tokens of its own segment. Default: one
        segment (with a cache: 1).
      cache: a KV cache from `init_cache` (or a previous call): the tokens
        are written at its index and attend everything cached before them.
      return_attention: also return the attention probabilities.
      compute_logits: False skips the `[B, T, V]` logits (a loss computes
        them blockwise from "features" and `unembedding(params)`).

    Returns:
      {"logits": [B, T, V] float32 (unless compute_logits=False),
       "features": [B, T, D] the final normed hidden state,
       "hidden_states": L+1 x [B, T, D], the residual stream after the
         embedding and after each layer (un-normed),
       "attention": L x [B, H, T, S] float32 (on request; S = T, or the
         cache length), "cache": the updated cache (when one was given)}.
    """
    c = self.config
    if isinstance(tokens, Mapping):
      positions = tokens.get("positions", positions)
      segment_ids = tokens.get("segment_ids", segment_ids)
      tokens = tokens["tokens"]
    if cache is None and tokens.shape[1] > c.max_len:
      raise ValueError(
          f"sequence length {tokens.shape[1]} exceeds the model's max_len "
          f"{c.max_len}; allowed: at most {c.max_len} tokens")
    index = 0 if cache is None else cache["index"]
    positions, mask, key_segments = attention_layout(
        tokens.shape, positions, segment_ids, cache)

    dtype = jnp.dtype(c.dtype)
    embed = nn.Embed(c.vocab_size, c.d_model, dtype=dtype,
                     param_dtype=jnp.dtype(c.param_dtype),
                     embedding_init=nn.initializers.normal(c.init_std),
                     name="embed")
    x = embed(tokens.astype(jnp.int32))
    x = nn.Dropout(c.dropout, deterministic=not train)(x)
    hidden = [x]
    attentions = []
    new_layers = []
    block_cls = nn.remat(layers_lm.Block, static_argnums=(6, 7)) if (
        c.remat) else layers_lm.Block
    for i in range(c.num_layers):
      layer_cache = None if cache is None else cache["layers"][i]
      x, probs, layer_cache = block_cls(c, name=f"layer_{i}")(
          x, positions, mask, layer_cache, index, train, return_attention)
      hidden.append(x)
      attentions.append(probs)
      new_layers.append(layer_cache)
    features = layers_lm.make_norm(c, "final_norm")(x)
    out = {"features": features, "hidden_states": tuple(hidden)}
    # At init the head is built even without logits, so params are complete.
    if compute_logits or self.is_initializing():
      if c.tie_embeddings:
        logits = embed.attend(features)
      else:
        logits = nn.Dense(c.vocab_size, use_bias=False, dtype=dtype,
                          param_dtype=jnp.dtype(c.param_dtype),
                          kernel_init=nn.initializers.normal(c.init_std),
                          name="head")(features)
      logits = logits.astype(jnp.float32)
      if c.logit_softcap:
        logits = c.logit_softcap * jnp.tanh(logits / c.logit_softcap)
      if compute_logits:
        out["logits"] = logits
    if return_attention:
      out["attention"] = tuple(attentions)
    if cache is not None:
      out["cache"] = {"layers": tuple(new_layers),
                      "segment_ids": key_segments,
                      "index": jnp.asarray(index + tokens.shape[1], jnp.int32)}
    return out


@registry.register_model("transformer")
def transformer(num_classes: int, *, size: str = "tiny",
                dtype: str = "float32", **fields: Any) -> Transformer:
  """The registered constructor: a `TRANSFORMER_SIZES` preset with
  `vocab_size=num_classes`, compute dtype `dtype` and any
  `TransformerConfig` field overridden by `fields` (config.model.kwargs)."""
  return Transformer(config_from_kwargs(
      size, vocab_size=num_classes, dtype=dtype, **fields))


def num_params(config: TransformerConfig) -> int:
  """Parameter count of `config` (shapes only; nothing is allocated)."""
  model = Transformer(config)
  tokens = jax.ShapeDtypeStruct((1, 1), jnp.int32)
  shapes = jax.eval_shape(lambda t: model.init(jax.random.PRNGKey(0), t),
                          tokens)
  return sum(math.prod(x.shape) for x in jax.tree.leaves(shapes))

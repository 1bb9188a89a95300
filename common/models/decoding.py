"""Batched autoregressive decoding with a KV cache.

`generate` samples `max_new_tokens` continuations of ragged prompts in one
jitted call: greedy, or sampling at a temperature with optional top-k and
top-p (nucleus) filtering; rows stop at `eos_id`. It returns each sampled
token's log-probability and the entropy of the distribution it was drawn
from (the RL and decoding papers need both). With `use_cache=False` every
step reruns the full forward instead (the reference the cache is tested
and benchmarked against).

Layout: prompts arrive right-padded `[B, P]` with their lengths. Inside,
each row is right-aligned so every row writes its next token at the same
cache slot; the left padding is a segment 0 that no real token attends to,
and RoPE positions count from each row's first real token. The output is
left-aligned again: row b = prompt[:len_b] + generated tokens, then padding.

Distributions: with temperature T (not greedy) the log-probs and entropies
are those of softmax(logits / T) before top-k/top-p filtering; greedy
reports softmax(logits).
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from common.models import transformer as transformer_lib

init_cache = transformer_lib.init_cache


def filter_logits(logits: jax.Array, top_k: jax.Array, top_p: jax.Array
                  ) -> jax.Array:
  """`logits` `[B, V]` with tokens outside the top-k (k > 0) and outside
  the top-p nucleus set to -inf. The nucleus is the smallest set of most
  probable tokens whose probability mass reaches `top_p` (all when
  top_p >= 1). k and p may be traced (one sort serves both)."""
  ordered = jnp.sort(logits, axis=-1)[:, ::-1]
  probs = jax.nn.softmax(ordered, axis=-1)
  mass_before = jnp.cumsum(probs, axis=-1) - probs
  rank = jnp.arange(logits.shape[-1])
  keep = ((mass_before < top_p) | (top_p >= 1.0)) & (
      (rank < top_k) | (top_k <= 0))
  threshold = jnp.min(jnp.where(keep, ordered, jnp.inf), axis=-1,
                      keepdims=True)
  return jnp.where(logits < threshold, -jnp.inf, logits)


def sample_token(logits: jax.Array, rng: jax.Array, temperature: jax.Array,
                 top_k: jax.Array, top_p: jax.Array, greedy: jax.Array
                 ) -> tuple[jax.Array, jax.Array, jax.Array]:
  """One token per row from `logits` `[B, V]`: (token [B] int32, its
  log-prob [B], the entropy [B] of the unfiltered distribution). All the
  sampling knobs may be traced."""
  scaled = jnp.where(greedy, logits, logits / temperature)
  logp = jax.nn.log_softmax(scaled, axis=-1)
  entropy = -jnp.sum(jnp.exp(logp) * jnp.where(logp > -jnp.inf, logp, 0.0),
                     axis=-1)
  filtered = jax.lax.cond(
      (top_k > 0) | (top_p < 1.0),
      lambda x: filter_logits(x, top_k, top_p), lambda x: x, scaled)
  token = jnp.where(greedy, jnp.argmax(logits, axis=-1),
                    jax.random.categorical(rng, filtered))
  token = token.astype(jnp.int32)
  return token, jnp.take_along_axis(logp, token[:, None], -1)[:, 0], entropy


def _roll_rows(x: jax.Array, shift: jax.Array) -> jax.Array:
  return jax.vmap(jnp.roll)(x, shift)


@functools.partial(jax.jit,
                   static_argnames=("model", "max_new_tokens", "use_cache"))
def _generate(model: nn.Module, params: Any, prompt: jax.Array,
              prompt_lengths: jax.Array, rng: jax.Array,
              knobs: dict[str, jax.Array], *, max_new_tokens: int,
              use_cache: bool) -> dict[str, jax.Array]:
  batch, p = prompt.shape
  total = p + max_new_tokens
  lengths = prompt_lengths.astype(jnp.int32)
  offset = p - lengths                      # left padding of each row
  slots = jnp.arange(total, dtype=jnp.int32)[None]
  tokens = jnp.zeros((batch, total), jnp.int32).at[:, :p].set(
      _roll_rows(prompt.astype(jnp.int32), offset))
  segments = (slots >= offset[:, None]).astype(jnp.int32)
  positions = jnp.maximum(slots - offset[:, None], 0)
  variables = {"params": params}

  def forward_all(tokens):
    out = model.apply(variables, tokens, positions=positions,
                      segment_ids=segments)
    return out["logits"]

  if use_cache:
    out = model.apply(variables, tokens[:, :p], positions=positions[:, :p],
                      segment_ids=segments[:, :p],
                      cache=init_cache(model.config, batch, total))
    logits, cache = out["logits"][:, -1], out["cache"]
  else:
    logits, cache = forward_all(tokens)[:, p - 1], None

  eos_id = knobs["eos_id"]                   # -1: no eos
  pad = jnp.maximum(eos_id, 0)
  zeros = jnp.zeros((batch, max_new_tokens), jnp.float32)
  # carry: step, tokens, logits (of the next token), cache, done, n_new,
  # logprobs, entropies.
  def cond(carry):
    step, done = carry[0], carry[4]
    return (step < max_new_tokens) & ~jnp.all(done)

  def body(carry):
    step, tokens, logits, cache, done, n_new, logprobs, entropies = carry
    token, logp, ent = sample_token(
        logits, jax.random.fold_in(rng, step), knobs["temperature"],
        knobs["top_k"], knobs["top_p"], knobs["greedy"])
    token = jnp.where(done, pad, token)
    live = (~done).astype(jnp.float32)
    logprobs = logprobs.at[:, step].set(logp * live)
    entropies = entropies.at[:, step].set(ent * live)
    n_new = n_new + (~done).astype(jnp.int32)
    done = done | (token == eos_id)
    slot = p + step
    tokens = jax.lax.dynamic_update_slice(tokens, token[:, None], (0, slot))
    if use_cache:
      out = model.apply(
          variables, token[:, None],
          positions=jax.lax.dynamic_slice_in_dim(positions, slot, 1, 1),
          segment_ids=jnp.ones((batch, 1), jnp.int32), cache=cache)
      logits, cache = out["logits"][:, 0], out["cache"]
    else:
      logits = jax.lax.dynamic_index_in_dim(forward_all(tokens), slot, 1,
                                            keepdims=False)
    return step + 1, tokens, logits, cache, done, n_new, logprobs, entropies

  carry = (jnp.int32(0), tokens, logits, cache,
           jnp.zeros((batch,), bool), jnp.zeros((batch,), jnp.int32),
           zeros, zeros)
  _, tokens, _, _, _, n_new, logprobs, entropies = jax.lax.while_loop(
      cond, body, carry)
  tokens = _roll_rows(tokens, -offset)
  out_len = lengths + n_new
  tokens = jnp.where(slots < out_len[:, None], tokens, pad)
  return {"tokens": tokens, "logprobs": logprobs, "entropies": entropies,
          "lengths": out_len}


def generate(model: nn.Module, params: Any, prompt: jax.Array,
             prompt_lengths: jax.Array, rng: jax.Array, *,
             max_new_tokens: int, temperature: float = 1.0, top_k: int = 0,
             top_p: float = 1.0, greedy: bool = False,
             eos_id: int | None = None, use_cache: bool = True
             ) -> dict[str, jax.Array]:
  """Samples continuations of a batch of prompts (jitted; the sampling
  knobs and eos_id are traced: changing them never recompiles).

  Args:
    model: a `Transformer`.
    params: its parameters.
    prompt: `[B, P]` int32 prompts, right-padded.
    prompt_lengths: `[B]` int32 lengths (1..P).
    rng: sampling key (unused when greedy).
    max_new_tokens: N, tokens generated per row (fewer after eos).
    temperature, top_k, top_p, greedy: the sampling rule (see module doc).
    eos_id: a row stops after emitting it; later slots hold it as padding
      (padding is 0 without eos_id).
    use_cache: False recomputes the whole sequence every step.

  Returns:
    {"tokens": [B, P+N] prompt + continuation, left-aligned, padded;
     "logprobs": [B, N] float32 log-prob of each new token (0 after stop);
     "entropies": [B, N] float32 entropy of each step's distribution
       (0 after stop); "lengths": [B] valid tokens per row}.

  Raises:
    ValueError: P + N exceeds the model's max_len (one line).
  """
  total = prompt.shape[1] + max_new_tokens
  max_len = model.config.max_len
  if total > max_len:
    raise ValueError(
        f"prompt length {prompt.shape[1]} + max_new_tokens {max_new_tokens} "
        f"= {total} exceeds the model's max_len {max_len}; allowed: at most "
        f"{max_len} tokens in all")
  if max_new_tokens < 1:
    raise ValueError(f"max_new_tokens={max_new_tokens}; allowed: >= 1")
  knobs = {"temperature": jnp.asarray(temperature, jnp.float32),
           "top_k": jnp.asarray(top_k, jnp.int32),
           "top_p": jnp.asarray(top_p, jnp.float32),
           "greedy": jnp.asarray(greedy, bool),
           "eos_id": jnp.asarray(-1 if eos_id is None else eos_id,
                                 jnp.int32)}
  return _generate(model, params, jnp.asarray(prompt),
                   jnp.asarray(prompt_lengths), rng, knobs,
                   max_new_tokens=max_new_tokens, use_cache=use_cache)

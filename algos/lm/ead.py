"""Entropy Adaptive Decoding: switch between a small and a large LM.

Entropy Adaptive Decoding: Dynamic Model Switching for Efficient Inference.
Toby Simonds, 2025 (arXiv, Feb 2025). No official code: this follows the
paper's description. Decoding runs with a small model; the rolling mean
of the entropy of the predictive distributions over the last `window`
generated tokens is monitored, and while it exceeds `threshold` the next
token comes from the large model instead (back to the small one when it
falls to or below the threshold).

`ead_generate` is one jitted while-loop with a KV cache per model (the
layout of `common.models.decoding`: ragged prompts right-aligned inside);
`threshold` and the switching rule's numbers are traced, so a threshold
sweep compiles once. Both models advance their caches every step, so a
switch needs no re-prefill here; which model *chose* each token is
returned as `use_large [B, N]`. Whose entropy is monitored:

* `monitor="small"` (default): the small model's distribution at every
  step, whichever model chose the token (the small model runs on every
  token; cost per token `c_small + use_large * c_large`);
* `monitor="active"`: the distribution of the model that chose the token
  (only one model runs per token; cost `c_small` or `c_large`, the
  accounting behind the paper's "43% of tokens -> 41.5% less compute" for
  3B / 11B: 0.57 * 3 + 0.43 * 11 = 0.585 * 11).

The control `mode="random"` picks the large model for each token with
probability `p_large` (the same share, no entropy).

`compute_cost` counts forward FLOPs per generated token as 2 x the
non-embedding parameter count of each model that ran (the cache
catch-up of an idle model at a switch is not counted).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from common.models import decoding

MONITORS = ("small", "active")
MODES = ("entropy", "random")


def rolling_entropy(history: jax.Array, count: jax.Array) -> jax.Array:
  """Mean of the last `min(count, W)` entropies of a ring buffer.

  Args:
    history: `[B, W]` the last W entropies (slot t mod W holds step t).
    count: `[B]` int, entropies written so far.

  Returns:
    `[B]` the rolling mean (0 before the first token).
  """
  w = history.shape[1]
  n = jnp.minimum(count, w)
  valid = jnp.arange(w)[None] < n[:, None]
  return jnp.sum(jnp.where(valid, history, 0.0), 1) / jnp.maximum(n, 1)


def check_threshold(threshold: float, vocab_size: int) -> None:
  """One-line error unless 0 <= threshold <= log V (the entropy range)."""
  top = math.log(vocab_size)
  if not (isinstance(threshold, (int, float)) and 0.0 <= threshold <= top):
    raise ValueError(f"EAD threshold {threshold!r} is outside the entropy "
                     f"range; allowed [0, log V] = [0, {top:.4f}] nats "
                     f"(V = {vocab_size})")


def _entropy(logits: jax.Array) -> jax.Array:
  logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  return -jnp.sum(jnp.exp(logp) * logp, axis=-1)


@functools.partial(jax.jit, static_argnames=(
    "small", "large", "max_new_tokens", "window", "monitor"))
def _ead(small: nn.Module, large: nn.Module, params_small: Any,
         params_large: Any, prompt: jax.Array, prompt_lengths: jax.Array,
         rng: jax.Array, knobs: dict[str, jax.Array], *, max_new_tokens: int,
         window: int, monitor: str) -> dict[str, jax.Array]:
  batch, p = prompt.shape
  total = p + max_new_tokens
  lengths = prompt_lengths.astype(jnp.int32)
  offset = p - lengths
  slots = jnp.arange(total, dtype=jnp.int32)[None]
  tokens = jnp.zeros((batch, total), jnp.int32).at[:, :p].set(
      jax.vmap(jnp.roll)(prompt.astype(jnp.int32), offset))
  segments = (slots >= offset[:, None]).astype(jnp.int32)
  positions = jnp.maximum(slots - offset[:, None], 0)

  def prefill(model, params):
    out = model.apply({"params": params}, tokens[:, :p],
                      positions=positions[:, :p], segment_ids=segments[:, :p],
                      cache=decoding.init_cache(model.config, batch, total))
    return out["logits"][:, -1], out["cache"]

  def advance(model, params, token, slot, cache):
    out = model.apply(
        {"params": params}, token[:, None],
        positions=jax.lax.dynamic_slice_in_dim(positions, slot, 1, 1),
        segment_ids=jnp.ones((batch, 1), jnp.int32), cache=cache)
    return out["logits"][:, 0], out["cache"]

  logits_s, cache_s = prefill(small, params_small)
  logits_l, cache_l = prefill(large, params_large)
  eos_id = knobs["eos_id"]
  pad = jnp.maximum(eos_id, 0)
  zeros = jnp.zeros((batch, max_new_tokens), jnp.float32)

  def cond(carry):
    return (carry[0] < max_new_tokens) & ~jnp.all(carry[6])

  def body(carry):
    (step, tokens, logits_s, logits_l, cache_s, cache_l, done, n_new,
     history, use_large, entropies) = carry
    rolling = rolling_entropy(history, jnp.full((batch,), step))
    key_switch, key_sample = jax.random.split(jax.random.fold_in(rng, step))
    by_entropy = rolling > knobs["threshold"]
    by_chance = jax.random.uniform(key_switch, (batch,)) < knobs["p_large"]
    large_now = jnp.where(knobs["random"], by_chance, by_entropy)
    logits = jnp.where(large_now[:, None], logits_l, logits_s)
    token, _, ent_active = decoding.sample_token(
        logits, key_sample, knobs["temperature"], jnp.int32(0),
        jnp.float32(1.0), knobs["greedy"])
    ent = _entropy(logits_s) if monitor == "small" else ent_active
    token = jnp.where(done, pad, token)
    live = ~done
    history = history.at[:, step % window].set(ent)
    use_large = use_large.at[:, step].set(
        (large_now & live).astype(jnp.float32))
    entropies = entropies.at[:, step].set(ent * live)
    n_new = n_new + live.astype(jnp.int32)
    done = done | (token == eos_id)
    slot = p + step
    tokens = jax.lax.dynamic_update_slice(tokens, token[:, None], (0, slot))
    logits_s, cache_s = advance(small, params_small, token, slot, cache_s)
    logits_l, cache_l = advance(large, params_large, token, slot, cache_l)
    return (step + 1, tokens, logits_s, logits_l, cache_s, cache_l, done,
            n_new, history, use_large, entropies)

  carry = (jnp.int32(0), tokens, logits_s, logits_l, cache_s, cache_l,
           jnp.zeros((batch,), bool), jnp.zeros((batch,), jnp.int32),
           jnp.zeros((batch, window), jnp.float32), zeros, zeros)
  out = jax.lax.while_loop(cond, body, carry)
  tokens, n_new, use_large, entropies = out[1], out[7], out[9], out[10]
  tokens = jax.vmap(jnp.roll)(tokens, -offset)
  out_len = lengths + n_new
  tokens = jnp.where(slots < out_len[:, None], tokens, pad)
  return {"tokens": tokens, "use_large": use_large, "entropies": entropies,
          "lengths": out_len, "new_tokens": n_new}


def ead_generate(small: nn.Module, params_small: Any, large: nn.Module,
                 params_large: Any, prompt: jax.Array,
                 prompt_lengths: jax.Array, rng: jax.Array, *,
                 max_new_tokens: int, threshold: float, window: int = 4,
                 monitor: str = "small", mode: str = "entropy",
                 p_large: float = 0.0, greedy: bool = True,
                 temperature: float = 1.0, eos_id: int | None = None
                 ) -> dict[str, jax.Array]:
  """Entropy-adaptive (or random) two-model decoding; see the module doc.

  Args:
    small, large: `Transformer`s with the same vocabulary.
    params_small, params_large: their parameters.
    prompt: `[B, P]` int32, right-padded; prompt_lengths `[B]`.
    rng: sampling / random-switching key.
    max_new_tokens: N.
    threshold: nats in [0, log V]; the large model chooses the next token
      while the rolling entropy exceeds it (traced).
    window: tokens in the rolling mean (static).
    monitor: "small" or "active" (whose entropy is monitored).
    mode: "entropy" (EAD) or "random" (each token large with p_large).
    p_large: the random control's probability (traced).
    greedy, temperature: the sampling rule; eos_id: rows stop after it.

  Returns:
    {"tokens": [B, P+N] left-aligned; "use_large": [B, N] 1 where the
     large model chose the token (0 after stop); "entropies": [B, N] the
     monitored entropies; "lengths": [B]; "new_tokens": [B]}.
  """
  vocab = small.config.vocab_size
  if large.config.vocab_size != vocab:
    raise ValueError(f"the small model's vocabulary ({vocab}) differs from "
                     f"the large model's ({large.config.vocab_size}); EAD "
                     "needs one tokenizer")
  check_threshold(threshold, vocab)
  if monitor not in MONITORS or mode not in MODES:
    raise ValueError(f"monitor={monitor!r}, mode={mode!r}; allowed monitor "
                     f"in {MONITORS}, mode in {MODES}")
  if not 0.0 <= p_large <= 1.0:
    raise ValueError(f"p_large={p_large}; allowed [0, 1]")
  if window < 1:
    raise ValueError(f"window={window}; allowed >= 1")
  total = prompt.shape[1] + max_new_tokens
  for model in (small, large):
    if total > model.config.max_len:
      raise ValueError(f"prompt length + max_new_tokens = {total} exceeds "
                       f"a model's max_len {model.config.max_len}")
  knobs = {"threshold": jnp.float32(threshold),
           "p_large": jnp.float32(p_large),
           "random": jnp.asarray(mode == "random"),
           "greedy": jnp.asarray(greedy),
           "temperature": jnp.float32(temperature),
           "eos_id": jnp.int32(-1 if eos_id is None else eos_id)}
  return _ead(small, large, params_small, params_large, jnp.asarray(prompt),
              jnp.asarray(prompt_lengths), rng, knobs,
              max_new_tokens=max_new_tokens, window=window, monitor=monitor)


def flops_per_token(params: Any) -> float:
  """2 x the non-embedding parameter count (a forward's multiply-adds)."""
  flat = jax.tree_util.tree_flatten_with_path(params)[0]
  n = sum(x.size for path, x in flat
          if "embed" not in jax.tree_util.keystr(path))
  return 2.0 * n


def compute_cost(use_large: jax.Array, new_tokens: jax.Array, c_small: float,
                 c_large: float, monitor: str = "small") -> dict[str, float]:
  """Large-model share of the generated tokens and the decoding compute
  relative to the large model alone.

  Args:
    use_large: `[B, N]` from `ead_generate`.
    new_tokens: `[B]` generated tokens per row.
    c_small, c_large: cost of one token of each model (`flops_per_token`).
    monitor: as in `ead_generate` ("small": the small model runs on every
      token).
  """
  n = float(jnp.sum(new_tokens))
  large = float(jnp.sum(use_large))
  share = large / max(n, 1.0)
  small_runs = n if monitor == "small" else n - large
  cost = small_runs * c_small + large * c_large
  return {"large_share": share,
          "relative_compute": cost / max(n * c_large, 1e-12)}

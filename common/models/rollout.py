"""Group rollouts for RL fine-tuning of language models.

`sample_groups` draws G completions per prompt with the jitted KV-cache
sampler (`common.models.decoding`) and returns them in the *rollout*
layout every RL method reads (GRPO, EVOL-RL, EPO, AEPO):

* `tokens` `[N, S]` int32, N = prompts x G (row `i * G + g` is completion
  g of prompt i), S = P + L: the prompt's tokens, then the completion,
  left-aligned and padded;
* `prompt_lengths` `[N]`, `lengths` `[N]` (prompt + completion tokens);
* `completion_mask` `[N, L]` float32: 1 on completion slot j of a row
  (token `tokens[b, prompt_lengths[b] + j]`) that the policy produced (a
  multi-turn rollout writes 0 on the environment's tokens);
* `logprobs`, `entropies` `[N, L]`: the sampler's log-prob of each
  completion token and the entropy it was drawn from (at the sampling
  temperature, before top-p).

`completion_logprobs` recomputes the per-slot log-probs and entropies from
a training forward's logits (the differentiable side of the same layout).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from common.models import decoding

Rollout = dict[str, jax.Array]


def sample_groups(model: nn.Module, params: Any, prompt: jax.Array,
                  prompt_lengths: jax.Array, rng: jax.Array, *,
                  group_size: int, max_new_tokens: int,
                  temperature: jax.Array | float = 1.0,
                  top_p: jax.Array | float = 1.0, eos_id: int | None = None,
                  use_cache: bool = True) -> Rollout:
  """G sampled completions of each prompt (jittable; knobs traced).

  Args:
    model: a `Transformer`.
    params: its parameters (gradients are not taken through sampling).
    prompt: `[B, P]` int32 prompts, right-padded.
    prompt_lengths: `[B]` int32 lengths (1..P).
    rng: sampling key.
    group_size: G, completions per prompt (static).
    max_new_tokens: L, completion slots (static).
    temperature, top_p: the sampling rule (traced).
    eos_id: completions stop after it (it is a completion token).
    use_cache: False recomputes the whole prefix at every step.

  Returns:
    The rollout layout of the module docstring (N = B * G rows).
  """
  prompt = jnp.repeat(prompt, group_size, axis=0)
  lengths = jnp.repeat(prompt_lengths.astype(jnp.int32), group_size, axis=0)
  out = decoding.generate(
      model, jax.lax.stop_gradient(params), prompt, lengths, rng,
      max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
      eos_id=eos_id, use_cache=use_cache)
  n_new = out["lengths"] - lengths
  mask = jnp.arange(max_new_tokens)[None] < n_new[:, None]
  return {"tokens": out["tokens"], "prompt_lengths": lengths,
          "lengths": out["lengths"],
          "completion_mask": mask.astype(jnp.float32),
          "logprobs": out["logprobs"], "entropies": out["entropies"]}


def completion_slots(prompt_lengths: jax.Array, num_slots: int,
                     seq_len: int) -> jax.Array:
  """`[N, L]` positions whose logits predict completion slot j (clipped)."""
  idx = prompt_lengths[:, None] - 1 + jnp.arange(num_slots)[None]
  return jnp.clip(idx, 0, seq_len - 2)


def completion_tokens(rollout: Rollout) -> jax.Array:
  """`[N, L]` int32 completion tokens (slot j of each row)."""
  tokens = rollout["tokens"]
  num_slots = rollout["completion_mask"].shape[1]
  idx = completion_slots(rollout["prompt_lengths"], num_slots,
                         tokens.shape[1])
  return jnp.take_along_axis(tokens, idx + 1, axis=1)


def forward_inputs(rollout: Rollout) -> dict[str, jax.Array]:
  """The transformer's input dict for a training forward on the rollout
  (segment 0 = padding after each row's end)."""
  tokens = rollout["tokens"]
  slots = jnp.arange(tokens.shape[1], dtype=jnp.int32)[None]
  segments = (slots < rollout["lengths"][:, None]).astype(jnp.int32)
  return {"tokens": tokens, "segment_ids": segments,
          "positions": jnp.broadcast_to(slots, tokens.shape)}


def completion_logprobs(logits: jax.Array, rollout: Rollout,
                        temperature: jax.Array | float = 1.0
                        ) -> tuple[jax.Array, jax.Array]:
  """Log-probs and entropies of the completion slots from a forward.

  Args:
    logits: `[N, S, V]` logits of `forward_inputs(rollout)`.
    rollout: the rollout layout.
    temperature: the policy is softmax(logits / temperature).

  Returns:
    `(logp [N, L], entropy [N, L])` float32, differentiable; values on
    slots outside `completion_mask` are meaningless (mask them).
  """
  tokens = rollout["tokens"]
  num_slots = rollout["completion_mask"].shape[1]
  idx = completion_slots(rollout["prompt_lengths"], num_slots,
                         tokens.shape[1])
  picked = jnp.take_along_axis(logits, idx[..., None], axis=1)
  logp_all = jax.nn.log_softmax(picked.astype(jnp.float32) / temperature,
                                axis=-1)
  nxt = jnp.take_along_axis(tokens, idx + 1, axis=1)
  logp = jnp.take_along_axis(logp_all, nxt[..., None], axis=-1)[..., 0]
  entropy = -jnp.sum(jnp.exp(logp_all) * logp_all, axis=-1)
  return logp, entropy

"""`text_corridor`: a procedurally generated multi-turn sparse-reward text task.

The CPU stand-in for the LLM-agent environments of EPO (ScienceWorld,
ALFWorld): an agent reads a short text observation each turn and answers
with one action token; the episode pays 1 only at success, nothing before.

World: a corridor of `length` cells (drawn per episode in
[min_length, max_length]), the agent at cell 0, a key at a random cell in
[1, length - 2], a door at the last cell. Actions: `left`, `right`, `pick`
(takes the key on its cell), `open` (at the door with the key: success,
reward 1, episode over). Every token the policy emits is parsed to an
action: the four action words directly, any other token `t` to action
`t mod 4` (a lenient action parser, so an untrained policy acts at random
rather than idles). An episode has at most `max_turns` turns; the shortest
solution takes `length + 1`. A uniformly random policy succeeds ~7% of the
time at the defaults (lengths 4-7, 20 turns): the reward is sparse.

Text: a trajectory is one token sequence, `[bos, cell_0, hold_0, a_0, cell_1,
hold_1, a_1, ...]`, with `cell` in {empty, key, door} (the key shows only
while it lies there) and `hold` in {no_key, key_held}. The policy sees the
whole history (a transformer over the sequence). Vocabulary (`VOCAB`, 11
tokens): pad, bos, the four actions, the five observation words.

`rollout` plays G episodes of each of B procedurally drawn worlds with a
transformer policy under `jit` and returns the shared rollout layout
(`common.models.rollout`): the prompt is `[bos, cell_0, hold_0]`, the
completion the rest, `completion_mask` 1 on the policy's action tokens and 0
on the environment's observation tokens, plus `turn [N, L]` (each slot's
turn index, for EPO's per-turn entropy history), `reward [N]` and
`success [N]`. No KV cache: every turn re-runs the (tiny) prefix.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from common.models import decoding

VOCAB = ("<pad>", "<bos>", "left", "right", "pick", "open",
         "empty", "key", "door", "no_key", "key_held")
PAD, BOS, LEFT, RIGHT, PICK, OPEN = range(6)
EMPTY, KEY, DOOR, NO_KEY, KEY_HELD = range(6, 11)
ACTIONS = (LEFT, RIGHT, PICK, OPEN)
DEFAULTS = {"min_length": 4, "max_length": 7, "max_turns": 20}


def check(min_length: int, max_length: int, max_turns: int) -> None:
  if not 3 <= min_length <= max_length:
    raise ValueError(f"corridor lengths [{min_length}, {max_length}]: need "
                     "3 <= min_length <= max_length (start, key, door)")
  if max_turns < max_length + 1:
    raise ValueError(f"max_turns={max_turns} < max_length + 1 = "
                     f"{max_length + 1}: the longest world is unsolvable")


def draw_worlds(rng: jax.Array, n: int, min_length, max_length
                ) -> dict[str, jax.Array]:
  """`n` worlds: `{length [n], key_pos [n]}` int32 (bounds may be traced)."""
  k1, k2 = jax.random.split(rng)
  length = jax.random.randint(k1, (n,), min_length, max_length + 1)
  key_pos = jax.random.randint(k2, (n,), 1, length - 1)
  return {"length": length.astype(jnp.int32),
          "key_pos": key_pos.astype(jnp.int32)}


def reset(world: dict[str, jax.Array]) -> dict[str, jax.Array]:
  """The start state of one world: `{length, key_pos, pos, has_key, done,
  success}` scalars."""
  z = jnp.zeros((), jnp.int32)
  return {"length": world["length"], "key_pos": world["key_pos"], "pos": z,
          "has_key": jnp.zeros((), bool), "done": jnp.zeros((), bool),
          "success": jnp.zeros((), bool)}


def prompts(worlds: dict[str, jax.Array]) -> jax.Array:
  """[n, 3] the first observation of each world: `[bos, cell_0, hold_0]`."""
  obs = jax.vmap(lambda w: observe(reset(w)))(worlds)
  return jnp.concatenate(
      [jnp.full((obs.shape[0], 1), BOS, jnp.int32), obs], axis=1)


def observe(state: dict[str, jax.Array]) -> jax.Array:
  """[2] tokens: the cell's content and whether the key is held."""
  cell = jnp.where(state["pos"] == state["length"] - 1, DOOR,
                   jnp.where((state["pos"] == state["key_pos"])
                             & ~state["has_key"], KEY, EMPTY))
  hold = jnp.where(state["has_key"], KEY_HELD, NO_KEY)
  return jnp.stack([cell, hold]).astype(jnp.int32)


def step(state: dict[str, jax.Array], action: jax.Array
         ) -> tuple[dict[str, jax.Array], jax.Array]:
  """`(state, reward)` after one action token (no-op once done)."""
  live = ~state["done"]
  action = jnp.where((action >= LEFT) & (action <= OPEN), action,
                     LEFT + action % 4)
  pos = state["pos"] + jnp.where(action == RIGHT, 1, 0) - jnp.where(
      action == LEFT, 1, 0)
  pos = jnp.clip(pos, 0, state["length"] - 1)
  has_key = state["has_key"] | ((action == PICK)
                                & (state["pos"] == state["key_pos"]))
  win = (action == OPEN) & state["has_key"] & (
      state["pos"] == state["length"] - 1)
  new = {"length": state["length"], "key_pos": state["key_pos"],
         "pos": jnp.where(live, pos, state["pos"]),
         "has_key": jnp.where(live, has_key, state["has_key"]),
         "done": state["done"] | (live & win),
         "success": state["success"] | (live & win)}
  return new, (live & win).astype(jnp.float32)


def rollout(model: nn.Module, params: Any, worlds: dict[str, jax.Array],
            rng: jax.Array, *, group_size: int, max_turns: int = 20,
            temperature: jax.Array | float = 1.0,
            greedy: jax.Array | bool = False) -> dict[str, jax.Array]:
  """G episodes in each world of `worlds` (`draw_worlds`; jittable).

  Returns the rollout layout (module docstring), N = B * G rows,
  S = 1 + 3 * max_turns tokens, L = S - 3 completion slots.
  """
  num_worlds = worlds["length"].shape[0]
  n, s = num_worlds * group_size, 1 + 3 * max_turns
  k_act = rng
  state = jax.vmap(reset)(jax.tree.map(
      lambda x: jnp.repeat(x, group_size, 0), worlds))
  tokens = jnp.zeros((n, s), jnp.int32).at[:, 0].set(BOS)
  tokens = tokens.at[:, 1:3].set(jax.vmap(observe)(state))
  params = jax.lax.stop_gradient(params)
  slots = jnp.arange(s, dtype=jnp.int32)[None]

  def turn(carry, t):
    tokens, state, length = carry
    seg = (slots < length[:, None]).astype(jnp.int32)
    logits = model.apply({"params": params}, tokens, segment_ids=seg,
                         positions=jnp.broadcast_to(slots, tokens.shape)
                         )["logits"]
    last = jnp.take_along_axis(logits, (length - 1)[:, None, None], 1)[:, 0]
    action, logp, ent = decoding.sample_token(
        last.astype(jnp.float32), jax.random.fold_in(k_act, t),
        temperature, 0, 1.0, greedy)
    live = ~state["done"]
    state, reward = jax.vmap(step)(state, action)
    obs = jax.vmap(observe)(state)
    row = jnp.arange(n)
    tokens = tokens.at[row, length].set(jnp.where(live, action, PAD))
    more = live & ~state["done"] & (t + 1 < max_turns)
    for j in range(2):
      tokens = tokens.at[row, jnp.minimum(length + 1 + j, s - 1)].set(
          jnp.where(more, obs[:, j], tokens[row, jnp.minimum(
              length + 1 + j, s - 1)]))
    new_length = length + jnp.where(live, 1, 0) + jnp.where(more, 2, 0)
    return (tokens, state, new_length), (logp, ent, live, reward)

  init = (tokens, state, jnp.full((n,), 3, jnp.int32))
  (tokens, state, length), (logp, ent, live, reward) = jax.lax.scan(
      turn, init, jnp.arange(max_turns))
  # per-turn values [T, N] -> completion slots: turn t's action is slot 3t
  num_slots = s - 3
  idx = 3 * jnp.arange(max_turns)
  put = lambda v: jnp.zeros((n, num_slots), v.dtype).at[:, idx].set(v.T)
  turn_of_slot = jnp.broadcast_to(
      jnp.arange(num_slots, dtype=jnp.int32) // 3, (n, num_slots))
  return {"tokens": tokens, "prompt_lengths": jnp.full((n,), 3, jnp.int32),
          "lengths": length,
          "completion_mask": put(live.astype(jnp.float32)),
          "logprobs": put(logp), "entropies": put(ent),
          "turn": turn_of_slot, "reward": reward.sum(0),
          "success": state["success"].astype(jnp.float32),
          "num_turns": live.sum(0).astype(jnp.int32)}

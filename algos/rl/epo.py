"""EPO: entropy-regularised policy optimisation for multi-turn LM agents.

EPO: Entropy-regularized Policy Optimization for LLM Agents Reinforcement
Learning. Xu et al. 2025, arXiv:2509.22576.
Official code (PyTorch, a verl-agent fork): https://github.com/WujiangXu/EPO
(`verl/workers/actor/dp_actor.py`: `generate_entropy_penalty`,
`_calculate_epoch_based_entropy_weight`, `update_policy`;
`verl/trainer/ppo/ray_trainer.py`: the entropy history;
`agent_system/multi_turn_rollout/rollout_loop.py`: per-turn entropies).

Pieces, all pure and jittable with traced numbers:

* **Multi-turn trajectory entropy** (`trajectory_entropy`): the token
  entropy aggregated over every turn of every trajectory (each turn is one
  row in verl-agent, aggregated by `agg_loss`: `token-mean`,
  `seq-mean-token-sum`, `seq-mean-token-mean`).
* **Entropy history** (`update_entropy_history`, `entropy_history_mean`):
  the mean entropy of each turn index k over all training iterations so far
  (the trainer appends this iteration's per-turn batch means before the
  update, so the current batch is included).
* **Entropy corridor** (`entropy_corridor_mask`): a token at turn k is in
  the corridor when `min_ratio * Hbar[k] < H < max_ratio * Hbar[k]`
  (strict, token mode; seq mode uses the row's mean entropy); outside it the
  penalty is `out_range_penalty`, inside 0. It is switched on for rows whose
  turn is at least `gate_turn` (official: the micro-batch holds a turn
  `>= max_steps // 2`, 25).
* **Phase weight** (`epo_phase_weight`): `1 - 0.2 (1 - exp(-2 p))`, 1 ->
  0.83, over the first half of `max_epochs` (p the progress in it), then
  `0.8 exp(-3 p)`, 0.8 -> 0.04, over the second (official `max_epochs` =
  150, hard-coded in `update_policy`).
* **The loss** (`epo_regulariser`): the official actor adds
  `-entropy_coeff * (H_traj - smooth_coeff * w * agg(penalty))` to the
  PPO/GRPO loss.

Reading of the official code that matters: `generate_entropy_penalty`
returns `torch.where(within_range, 0, out_range_penalty)`, a constant, so
the corridor term changes the loss value but has **no gradient**; with it the
official EPO update equals PPO + `entropy_coeff` entropy bonus.
`penalty_grad="official"` keeps that (a stop-gradient); `"distance"` (ours,
not in the official code) multiplies the out-of-range indicator by the
distance of H to the corridor, `penalty * |H - clip(H, lo, hi)|`, whose
gradient pushes entropy back into the corridor from either side.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from algos.rl import grpo
from common.core import method as method_lib
from common.envs import text_corridor as tc

AGG_MODES = ("token-mean", "seq-mean-token-sum", "seq-mean-token-mean")
MASK_MODES = ("token", "seq")
PENALTY_GRADS = ("official", "distance")


def agg(values: jax.Array, mask: jax.Array, mode: str = "token-mean"
        ) -> jax.Array:
  """verl's `agg_loss` of `values` [N, T] under `mask` [N, T] (a scalar)."""
  m = mask.astype(values.dtype)
  if mode == "token-mean":
    return jnp.sum(values * m) / jnp.maximum(jnp.sum(m), 1.0)
  if mode == "seq-mean-token-sum":
    return jnp.mean(jnp.sum(values * m, -1))
  if mode == "seq-mean-token-mean":
    return jnp.mean(jnp.sum(values * m, -1) / jnp.maximum(jnp.sum(m, -1), 1.0))
  raise ValueError(f"unknown loss_agg_mode {mode!r}; allowed {AGG_MODES}")


def trajectory_entropy(ent_tok: jax.Array, mask: jax.Array,
                       mode: str = "token-mean") -> jax.Array:
  """Entropy of multi-turn trajectories, [B, K, T] turns flattened to rows.

  Args:
    ent_tok: [B, K, T] (or [N, T]) token entropies of every turn's response.
    mask: same shape, 1 on response tokens of turns that happened.
    mode: verl's aggregation (`AGG_MODES`).
  """
  t = ent_tok.shape[-1]
  return agg(ent_tok.reshape(-1, t), mask.reshape(-1, t), mode)


def turn_entropy(ent_tok: jax.Array, mask: jax.Array
                 ) -> tuple[jax.Array, jax.Array]:
  """Per-turn batch mean entropy `[K]` and whether turn k happened `[K]`.

  `ent_tok`, `mask`: [B, K, T] (the official `step_entropy_list`: the
  token-mean over the active samples of each env step).
  """
  m = mask.astype(ent_tok.dtype)
  count = jnp.sum(m, axis=(0, 2))
  mean = jnp.sum(ent_tok * m, axis=(0, 2)) / jnp.maximum(count, 1.0)
  return mean, count > 0


def init_entropy_history(num_turns: int) -> dict[str, jax.Array]:
  """An empty history of `num_turns` turn indices."""
  return {"sum": jnp.zeros(num_turns), "count": jnp.zeros(num_turns)}


def update_entropy_history(history: dict[str, jax.Array],
                           step_entropy: jax.Array, happened: jax.Array
                           ) -> dict[str, jax.Array]:
  """Adds one iteration's per-turn entropies `[K]` (where `happened`)."""
  h = happened.astype(step_entropy.dtype)
  return {"sum": history["sum"] + step_entropy * h,
          "count": history["count"] + h}


def entropy_history_mean(history: dict[str, jax.Array]) -> jax.Array:
  """[K] mean entropy of each turn over the iterations seen (0 if none)."""
  return history["sum"] / jnp.maximum(history["count"], 1.0)


def entropy_corridor_mask(ent_tok: jax.Array, h_ref: jax.Array,
                          min_ratio: float | jax.Array,
                          max_ratio: float | jax.Array,
                          out_range_penalty: float | jax.Array,
                          mode: str = "token") -> tuple[jax.Array, jax.Array]:
  """Official corridor values: `out_range_penalty` outside, 0 inside.

  Args:
    ent_tok: [N, T] token entropies (one row per turn).
    h_ref: [N] the historical mean entropy of each row's turn index, or
      [N, T] per token (a multi-turn row whose tokens span several turns).
    min_ratio, max_ratio: corridor bounds relative to `h_ref`.
    out_range_penalty: the value outside the corridor.
    mode: `"token"` (every token against the corridor) or `"seq"` (the row's
      plain mean over all T positions, as the official `entropy.mean(-1)`).

  Returns:
    `(penalty [N, T], inside [N, T] bool)`.
  """
  if mode not in MASK_MODES:
    raise ValueError(f"unknown mask_mode {mode!r}; allowed {MASK_MODES}")
  h = ent_tok if mode == "token" else jnp.broadcast_to(
      jnp.mean(ent_tok, -1, keepdims=True), ent_tok.shape)
  ref = h_ref[:, None] if h_ref.ndim == 1 else h_ref
  inside = (h > ref * min_ratio) & (h < ref * max_ratio)
  pen = jnp.where(inside, 0.0, out_range_penalty).astype(ent_tok.dtype)
  return pen, inside


def entropy_corridor_penalty(ent_tok: jax.Array, h_ref: jax.Array,
                             min_ratio, max_ratio, out_range_penalty,
                             mode: str = "token",
                             penalty_grad: str = "official") -> jax.Array:
  """[N, T] corridor penalty with the chosen gradient (module docstring)."""
  if penalty_grad not in PENALTY_GRADS:
    raise ValueError(f"unknown penalty_grad {penalty_grad!r}; allowed "
                     f"{PENALTY_GRADS}")
  pen, inside = entropy_corridor_mask(jax.lax.stop_gradient(ent_tok), h_ref,
                                      min_ratio, max_ratio,
                                      out_range_penalty, mode)
  if penalty_grad == "official":
    return pen
  h = ent_tok if mode == "token" else jnp.broadcast_to(
      jnp.mean(ent_tok, -1, keepdims=True), ent_tok.shape)
  ref = jax.lax.stop_gradient(h_ref)
  ref = ref[:, None] if ref.ndim == 1 else ref
  dist = jnp.abs(h - jnp.clip(h, ref * min_ratio, ref * max_ratio))
  return jnp.where(inside, 0.0, out_range_penalty * dist)


def epo_phase_weight(epoch: jax.Array | int, max_epochs: jax.Array | int
                     ) -> jax.Array:
  """The official decaying phase weight (1 at epoch 0, 0.04 at the end)."""
  epoch = jnp.asarray(epoch, jnp.float32)
  max_epochs = jnp.asarray(max_epochs, jnp.float32)
  e = jnp.clip(epoch, 0.0, jnp.maximum(max_epochs, 0.0))
  half = jnp.floor(max_epochs / 2)
  rest = max_epochs - half
  first = 1.0 - 0.2 * (1.0 - jnp.exp(-2.0 * e / jnp.maximum(half, 1.0)))
  second = 0.8 * jnp.exp(-3.0 * (e - half) / jnp.maximum(rest, 1.0))
  w = jnp.where(e <= half, jnp.where(half == 0, 1.0, first),
                jnp.where(rest == 0, 0.8, second))
  return jnp.where(max_epochs <= 0, 1.0, w)


def corridor_term(ent_tok: jax.Array, mask: jax.Array, turn: jax.Array,
                  history_mean: jax.Array, epoch: jax.Array, hp: dict, *,
                  agg_mode: str = "token-mean", mask_mode: str = "token",
                  penalty_grad: str = "official"
                  ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """`agg(w * gate * penalty)`, the corridor part of EPO's loss, and metrics.

  Args:
    ent_tok: [N, T] token entropies of N rows (differentiable).
    mask: [N, T] response mask.
    turn: [N] int, each row's turn index (the official `rollout_step`), or
      [N, T] each token's (one row per multi-turn trajectory).
    history_mean: [K] historical per-turn mean entropy.
    epoch: the phase weight's clock (training epoch or step).
    hp: traced `min_ratio`, `max_ratio`, `out_range_penalty`, `gate_turn`,
      `max_epochs`, `smooth_weights` (> 0: the phase weight is on).
  """
  h_ref = history_mean[jnp.clip(turn, 0, history_mean.shape[0] - 1)]
  pen = entropy_corridor_penalty(ent_tok, h_ref, hp["min_ratio"],
                                 hp["max_ratio"], hp["out_range_penalty"],
                                 mask_mode, penalty_grad)
  gate = (turn >= hp["gate_turn"]).astype(pen.dtype)
  gate = gate[:, None] if gate.ndim == 1 else gate
  w = jnp.where(hp["smooth_weights"] > 0,
                epo_phase_weight(epoch, hp["max_epochs"]), 1.0)
  pen_loss = agg(pen * gate * w, mask, agg_mode)
  inside = agg((pen == 0).astype(pen.dtype), mask * gate, "token-mean")
  sg = jax.lax.stop_gradient
  return pen_loss, {"corridor_penalty": sg(pen_loss),
                    "corridor_inside": sg(inside), "phase_weight": w}


def epo_regulariser(ent_tok: jax.Array, mask: jax.Array, turn: jax.Array,
                    history_mean: jax.Array, epoch: jax.Array, hp: dict,
                    *, agg_mode: str = "token-mean", mask_mode: str = "token",
                    penalty_grad: str = "official") -> tuple[jax.Array, dict]:
  """The term EPO adds to the PPO/GRPO loss (the official actor's),
  `-entropy_coeff * (agg(H) - smooth_coeff * corridor_term)`, and metrics
  (`hp` as `corridor_term`'s plus `entropy_coeff`, `smooth_coeff`)."""
  h = agg(ent_tok, mask, agg_mode)
  pen_loss, metrics = corridor_term(ent_tok, mask, turn, history_mean, epoch,
                                    hp, agg_mode=agg_mode,
                                    mask_mode=mask_mode,
                                    penalty_grad=penalty_grad)
  loss = -hp["entropy_coeff"] * (h - hp["smooth_coeff"] * pen_loss)
  return loss, {"entropy": jax.lax.stop_gradient(h), **metrics}


# ------------------------------------------------ the GRPO-core plug-ins
# EPO's numbers beyond GRPO's (traced; `history_turns` also sizes the
# history state). Official defaults: README / examples/general_running_
# server.sh (min 0, max 2.0, penalty 0.05-0.1, smooth_coeff 1.0) and
# dp_actor.py (max_epochs 150; the gate there is turn >= max_steps // 2 =
# 25 of ALFWorld's 50, ours defaults to every turn: gate_turn 0).
EXTRA = dict(smooth_coeff=1.0, min_ratio=0.0, max_ratio=2.0,
             out_range_penalty=0.1, gate_turn=0.0, max_epochs=150.0,
             smooth_weights=1.0, tokens_per_turn=3.0, history_turns=20.0)
_HOW = {"token_mean": "token-mean", "seq_mean_token_mean":
        "seq-mean-token-mean"}


def _make_regularizer(cfg: dict, penalty_grad: str) -> grpo.Regularizer:
  k = int(cfg.get("history_turns", EXTRA["history_turns"]))

  def init(ctx):
    del ctx
    return {**init_entropy_history(k), "step": jnp.zeros(())}

  def loss(hp, state, stats, how):
    n, t = stats.entropy.shape
    turn = jnp.floor(jnp.arange(t) / hp["tokens_per_turn"]).astype(jnp.int32)
    turn = jnp.broadcast_to(jnp.minimum(turn, k - 1), (n, t))
    ent = jax.lax.stop_gradient(stats.entropy)
    onehot = jax.nn.one_hot(turn, k) * stats.mask[..., None]     # [N, T, K]
    count = onehot.sum((0, 1))
    step_ent = jnp.einsum("ntk,nt->k", onehot, ent) / jnp.maximum(count, 1.0)
    hist = update_entropy_history(state, step_ent, count > 0)
    pen_loss, metrics = corridor_term(
        stats.entropy, stats.mask, turn, entropy_history_mean(hist),
        state["step"], hp, agg_mode=_HOW[how], penalty_grad=penalty_grad)
    # the official -entropy_coeff * (H - smooth_coeff * penalty): the
    # core already adds -entropy_coef * H
    term = hp["entropy_coef"] * hp["smooth_coeff"] * pen_loss
    metrics = {f"epo_{k}": v for k, v in metrics.items()}
    return term, metrics, {**hist, "step": state["step"] + 1}

  return grpo.Regularizer(init=init, loss=loss)


@grpo.register_regularizer("epo")
def make_epo_regularizer(cfg: dict) -> grpo.Regularizer:
  """EPO as the official code computes it (the penalty has no gradient)."""
  return _make_regularizer(cfg, "official")


@grpo.register_regularizer("epo_distance")
def make_epo_distance_regularizer(cfg: dict) -> grpo.Regularizer:
  """EPO with a differentiable corridor (ours; see the module docstring)."""
  return _make_regularizer(cfg, "distance")


@grpo.register_rollout("text_corridor")
def corridor_rollout(env, prompts, rng):
  """G episodes per world of the batch (`corridor_worlds`), scored by
  success (1 at success, 0 otherwise), with group advantages."""
  max_turns = (env.spec.max_new_tokens + 2) // 3
  worlds = {"length": prompts["length"], "key_pos": prompts["key_pos"]}
  ro = tc.rollout(env.model, env.params, worlds, rng,
                  group_size=env.spec.group_size, max_turns=max_turns,
                  temperature=env.hp["temperature"])
  ro["rewards"] = ro.pop("reward")
  ro["advantages"] = grpo.group_advantages(ro["rewards"], env.spec.group_size,
                                           env.hp["adv_eps"])
  ro["metrics"] = {"success": jnp.mean(ro.pop("success")),
                   "turns": jnp.mean(ro.pop("num_turns").astype(jnp.float32))}
  ro.pop("turn")
  return ro


@method_lib.register_method("epo")
def make(cfg: dict) -> method_lib.Method:
  """GRPO on the corridor with EPO's regulariser (`regularizer` may name
  `none` for the GRPO / GRPO + entropy baselines, same extra keys)."""
  return grpo.make_method("epo", cfg, extra={
      **EXTRA, "regularizer": "epo", "rollout": "text_corridor"})

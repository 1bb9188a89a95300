"""AEPO: entropy held at a target by a temperature-adjusted REINFORCE term.

Paper: Arbitrary Entropy Policy Optimization: Entropy Is Controllable in
Reinforcement Fine-tuning, Wang et al. 2025, arXiv:2510.08141.
Official code: https://github.com/597358816/AEPO (EasyR1/veRL;
`verl/trainer/ray_trainer.py`, `RayPPOTrainer.fit`, branch
`alg == "AEPO"`, lines 784-812; defaults `verl/trainer/config.py`).

Each step, with H the policy's entropy estimate of the previous update
(`-masked_mean(log pi(o_t))` over the update batch, the official
`actor/entropy_loss`; 0 before the first update):

1. T = T_high (1.2) if H <= H_target else T_low (0.8);
2. draw G completions at temperature T for the first quarter of the
   step's prompts, score them, group-normalise their rewards;
3. keep those with advantage > 0.05 (the correct ones of mixed groups),
   set their advantage to 1 (plain REINFORCE with the verifiable reward:
   E_{o ~ pi^T}[R grad log pi(o)]);
4. put the first min(reinforce_samples, #kept) of them (half as many
   when H > H_target) in place of the first rows of the GRPO batch, and
   update on that batch with the GRPO loss (old log-probs at T = 1).

Sampling from pi^T with T > 1 and reinforcing raises entropy, T < 1
lowers it: the entropy is steered to H_target. Registered as the method
`aepo` (section `method.aepo`: GRPO's keys plus the ones in `EXTRA`) and
as the regulariser `aepo` of any GRPO-family method.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from algos.rl import grpo
from common import config as config_lib
from common.core import method as method_lib

# Official defaults: trainer.entropy_base 0.5, temperature_high 1.2,
# temperature_low 0.8 (verl/trainer/config.py); reinforce_sample_num 60
# (examples/config.yaml); advantage threshold 0.05 (ray_trainer.py:802).
EXTRA = dict(target_entropy=0.5, temperature_high=1.2, temperature_low=0.8,
             reinforce_samples=60.0, select_threshold=0.05)
RULES = {"target_entropy": config_lib.at_least(0.0),
         "temperature_high": config_lib.greater_than(0.0),
         "temperature_low": config_lib.greater_than(0.0),
         "reinforce_samples": config_lib.at_least(0.0)}
AUX_PROMPT_DIVISOR = 4      # official: gen_batch_bak[:len // 4]
_ROW_KEYS = ("tokens", "prompt_lengths", "lengths", "completion_mask",
             "logprobs", "entropies")


def aepo_temperature(entropy: jax.Array, target: jax.Array,
                     t_low: jax.Array, t_high: jax.Array) -> jax.Array:
  """T_high when the entropy is at or below the target, else T_low."""
  return jnp.where(entropy <= target, t_high, t_low)


def reinforce_count(selected: jax.Array, limit: jax.Array,
                    above: jax.Array) -> jax.Array:
  """How many selected samples replace GRPO rows: min(limit, #selected),
  halved (floor) when the entropy is above the target."""
  count = jnp.minimum(jnp.floor(limit), jnp.sum(selected)).astype(jnp.int32)
  return jnp.where(above, count // 2, count)


def swap_in(rollout: grpo.Rollout, aux: grpo.Rollout, aux_rewards: jax.Array,
            aux_advantages: jax.Array, threshold: jax.Array,
            limit: jax.Array, above: jax.Array
            ) -> tuple[grpo.Rollout, dict[str, jax.Array]]:
  """The official entropy batch: `concat(selected[:k], batch[k:])`.

  Rows of `aux` with advantage > threshold, in their order, advantage 1,
  replace the first k rows of `rollout` (same row width).
  """
  selected = aux_advantages > threshold
  order = jnp.argsort(~selected, stable=True)
  count = reinforce_count(selected, limit, above)
  n = rollout["tokens"].shape[0]
  rows = jnp.arange(n)
  take = rows < count
  src = order[jnp.clip(rows, 0, order.shape[0] - 1)]
  out = dict(rollout)
  for key in _ROW_KEYS:
    mix = take.reshape((n,) + (1,) * (rollout[key].ndim - 1))
    out[key] = jnp.where(mix, aux[key][src], rollout[key])
  out["advantages"] = jnp.where(take, 1.0, rollout["advantages"])
  out["rewards"] = jnp.where(take, aux_rewards[src], rollout["rewards"])
  return out, {"aepo/reinforce_rows": count.astype(jnp.float32),
               "aepo/selected": jnp.sum(selected).astype(jnp.float32)}


def _init(ctx: method_lib.InitContext) -> dict[str, jax.Array]:
  target = float(ctx.config["target_entropy"])
  vocab = ctx.run.num_classes
  if not 0.0 <= target <= math.log(vocab):
    raise ValueError(
        f"target_entropy={target} is outside [0, log V] = [0, "
        f"{math.log(vocab):.4f}] nats for a vocabulary of {vocab}")
  return {"entropy": jnp.zeros((), jnp.float32)}


def _prepare(hp, state, env: grpo.RolloutEnv, rollout, prompts, rng):
  above = state["entropy"] > hp["target_entropy"]
  temperature = aepo_temperature(state["entropy"], hp["target_entropy"],
                                 hp["temperature_low"],
                                 hp["temperature_high"])
  nq = max(1, prompts["prompt"].shape[0] // AUX_PROMPT_DIVISOR)
  aux = env.sample(prompts["prompt"][:nq], prompts["prompt_length"][:nq],
                   rng, temperature=temperature)
  aux_rewards, _ = env.score(aux, prompts["answer"][:nq])
  aux_adv = grpo.group_advantages(aux_rewards, env.spec.group_size,
                                  hp["adv_eps"])
  out, metrics = swap_in(rollout, aux, aux_rewards, aux_adv,
                         hp["select_threshold"], hp["reinforce_samples"],
                         above)
  metrics["aepo/temperature"] = temperature
  metrics["aepo/aux_reward"] = jnp.mean(aux_rewards)
  return out, metrics


def _loss(hp, state, stats: grpo.TokenStats, how: str):
  del hp, state, how
  h = jax.lax.stop_gradient(grpo.aggregate(-stats.logp, stats.mask))
  return jnp.zeros((), jnp.float32), {"aepo/entropy_estimate": h}, {
      "entropy": h}


@grpo.register_regularizer("aepo")
def regularizer(method_config: dict[str, Any]) -> grpo.Regularizer:
  del method_config
  return grpo.Regularizer(init=_init, prepare=_prepare, loss=_loss)


@method_lib.register_method("aepo")
def make(cfg: dict[str, Any]) -> method_lib.Method:
  cfg = {**cfg, "regularizer": "aepo"}
  return grpo.make_method("aepo", cfg, regularizer=regularizer(cfg),
                          extra=EXTRA, rules=RULES)

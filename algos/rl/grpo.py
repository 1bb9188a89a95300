"""GRPO for language models: the shared core of the entropy-regularised RL
papers (EVOL-RL, EPO, AEPO).

Paper: DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open
Language Models, Shao et al. 2024, arXiv:2402.03300 (GRPO); asymmetric
clipping from DAPO, Yu et al. 2025, arXiv:2503.14476; the loss follows
the EasyR1/veRL `compute_policy_loss` the AEPO code trains with
(https://github.com/597358816/AEPO, verl/trainer/core_algos.py).

One optimizer step of the method `grpo` (through the shared train step):
the batch of the step is a batch of prompts (generator
`arithmetic_prompts`); the method's `value_and_grad` hook

1. samples G completions per prompt with the KV-cache sampler (a
   registered *rollout*; `single_turn` by default), parameters stopped;
2. scores them with a registered *reward* (`arithmetic`: exact match of
   the parsed answer) and normalises rewards within each group;
3. lets a registered *regulariser* rewrite the rollout batch (`prepare`:
   AEPO swaps in samples drawn at another temperature);
4. differentiates the clipped policy loss on the rollout batch (the
   Method's `apply`: the batch is the rollout), plus the regulariser's
   per-token term (`loss`: EPO's entropy penalty with history state).

Hooks (register from any file under `algos/` or `experiments/`):

  @register_reward("name")      fn(hp, inputs: RewardInputs) -> (r [N], metrics)
  @register_regularizer("name") make(method_config) -> Regularizer
  @register_rollout("name")     fn(env: RolloutEnv, prompts, rng) -> rollout

`method.grpo.{reward, regularizer, rollout}` choose them by name.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from common import config as config_lib
from common import registry
from common.core import method as method_lib
from common.data import tokenizers
from common.eval import verifiable
from common.models import rollout as rollout_lib

Rollout = dict[str, jax.Array]

REWARDS = registry.Registry("RL reward", ("algos", "experiments"),
                            "register_reward")
REGULARIZERS = registry.Registry("RL regulariser", ("algos", "experiments"),
                                 "register_regularizer")
ROLLOUTS = registry.Registry("RL rollout", ("algos", "experiments"),
                             "register_rollout")
register_reward = REWARDS.register
register_regularizer = REGULARIZERS.register
register_rollout = ROLLOUTS.register

# Static (structural) keys of a GRPO-family method section; every other
# number is a traced hyperparameter.
STATIC = ("group_size", "max_new_tokens", "use_cache", "reward",
          "regularizer", "rollout", "loss_agg", "reference", "parser",
          "tokenizer", "checkpoint", "eos_id")
DEFAULTS = dict(
    group_size=8, max_new_tokens=48, use_cache=True, reward="arithmetic",
    regularizer="none", rollout="single_turn", loss_agg="token_mean",
    reference=False, parser="jax", tokenizer="byte", checkpoint="",
    eos_id=-1,
    temperature=1.0, top_p=1.0, eps_low=0.2, eps_high=0.28, clip_dual=3.0,
    entropy_coef=0.0, kl_coef=0.0, adv_eps=1e-6, correct_reward=1.0,
    wrong_reward=0.0, unparsable_reward=0.0)
RULES = {
    "group_size": config_lib.at_least(2, integer=True),
    "max_new_tokens": config_lib.at_least(1, integer=True),
    "loss_agg": config_lib.one_of("token_mean", "seq_mean_token_mean"),
    "parser": config_lib.one_of("jax", "host"),
    "temperature": config_lib.greater_than(0.0),
    "top_p": config_lib.between(0.0, 1.0),
    "eps_low": config_lib.between(0.0, 1.0),
    "eps_high": config_lib.at_least(0.0),
    "clip_dual": config_lib.at_least(1.0),
    "entropy_coef": config_lib.at_least(0.0),
    "kl_coef": config_lib.at_least(0.0),
    "adv_eps": config_lib.greater_than(0.0),
}


# ------------------------------------------------------------ pure math
def group_advantages(rewards: jax.Array, group_size: int,
                     eps: jax.Array | float = 1e-6) -> jax.Array:
  """`(r - mean_group) / (std_group + eps)`, unbiased std as veRL's
  `compute_grpo_outcome_advantage` (torch.std). `rewards` `[N]`, rows
  `i * G + g`; returns `[N]`."""
  if group_size < 2:
    raise ValueError(f"group_size={group_size}: group-normalised "
                     "advantages need at least 2 completions per prompt; "
                     "allowed: group_size >= 2")
  r = rewards.reshape(-1, group_size)
  mean = jnp.mean(r, axis=1, keepdims=True)
  std = jnp.std(r, axis=1, keepdims=True, ddof=1)
  return ((r - mean) / (std + eps)).reshape(-1)


def aggregate(values: jax.Array, mask: jax.Array, how: str = "token_mean"
              ) -> jax.Array:
  """Mean of `[N, L]` per-token values over the mask: over all tokens
  (`token_mean`, veRL's masked_mean) or per sequence then over sequences
  (`seq_mean_token_mean`, the GRPO paper's 1/G sum_i 1/|o_i| sum_t)."""
  if how == "token_mean":
    return jnp.sum(values * mask) / (jnp.sum(mask) + 1e-8)
  per_seq = jnp.sum(values * mask, 1) / jnp.maximum(jnp.sum(mask, 1), 1.0)
  return jnp.mean(per_seq)


def clipped_policy_loss(logp: jax.Array, old_logp: jax.Array,
                        advantages: jax.Array, mask: jax.Array,
                        eps_low: jax.Array | float,
                        eps_high: jax.Array | float,
                        clip_dual: jax.Array | float = 3.0,
                        how: str = "token_mean"
                        ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """PPO loss with asymmetric clipping and dual clip, `[N, L]` inputs.

  ratio = exp(logp - old), clipped in log space to [log(1 - eps_low),
  log(1 + eps_high)]; per token max(-A ratio, -A clip(ratio)), and for
  A < 0 at most -A clip_dual. `advantages` `[N]` or `[N, L]`.

  Returns:
    `(loss, {"clipfrac_higher", "clipfrac_lower", "ppo_kl"})`.
  """
  adv = advantages if advantages.ndim == 2 else advantages[:, None]
  neg_kl = logp - old_logp
  ratio = jnp.exp(neg_kl)
  clipped = jnp.exp(jnp.clip(neg_kl, jnp.log(1.0 - eps_low),
                             jnp.log(1.0 + eps_high)))
  l1, l2, l3 = -adv * ratio, -adv * clipped, -adv * clip_dual
  higher = jnp.maximum(l1, l2)
  lower = jnp.minimum(higher, l3)
  final = jnp.where(adv < 0, lower, higher)
  metrics = {
      "clipfrac_higher": aggregate((l1 < l2).astype(jnp.float32), mask, how),
      "clipfrac_lower": aggregate(((higher > l3) & (adv < 0)).astype(
          jnp.float32), mask, how),
      "ppo_kl": aggregate(-neg_kl, mask, how)}
  return aggregate(final, mask, how), metrics


def low_var_kl(logp: jax.Array, ref_logp: jax.Array) -> jax.Array:
  """Per-token k3 estimator of KL(pi || ref), clamped to [-10, 10]."""
  kl = ref_logp - logp
  return jnp.clip(jnp.exp(kl) - kl - 1.0, -10.0, 10.0)


# ---------------------------------------------------------------- hooks
class RewardInputs(NamedTuple):
  """What a reward sees (N = prompts x G rows, L completion slots).

  Attributes:
    rollout: the rollout layout (`common.models.rollout`).
    completion: `[N, L]` int32 completion tokens.
    mask: `[N, L]` float32 completion mask.
    answer: `[N]` int32 reference answers (repeated per group).
    parsed: `[N]` int32 parsed answers; `parsable` / `overflow` `[N]` bool.
    group_size: G (static).
    forward: `forward(tokens_dict) -> model outputs` with the rollout's
      (stopped) parameters: embeddings for novelty rewards.
  """
  rollout: Rollout
  completion: jax.Array
  mask: jax.Array
  answer: jax.Array
  parsed: jax.Array
  parsable: jax.Array
  overflow: jax.Array
  group_size: int
  forward: Callable[[dict[str, jax.Array]], dict[str, jax.Array]]


class TokenStats(NamedTuple):
  """Per-token quantities of the update batch, `[N, L]` (differentiable
  where marked), for a regulariser's loss term."""
  logp: jax.Array          # current policy, differentiable
  entropy: jax.Array       # current policy's entropy, differentiable
  old_logp: jax.Array
  mask: jax.Array
  advantages: jax.Array    # [N]
  rewards: jax.Array       # [N]


class Regularizer(NamedTuple):
  """A per-token regulariser with state (in `method_state["reg"]`).

  Attributes:
    init: `init(ctx: InitContext) -> state` (checks its config too).
    prepare: `prepare(hp, state, env, rollout, prompts, rng) -> (rollout,
      metrics)`, before the update, no gradient (may sample more).
    loss: `loss(hp, state, stats: TokenStats, how) -> (term, metrics,
      new_state)`, added to the objective inside the gradient.
  """
  init: Callable[..., Any] | None = None
  prepare: Callable[..., Any] | None = None
  loss: Callable[..., Any] | None = None


class Spec(NamedTuple):
  """The static structure of a GRPO-family method."""
  group_size: int
  max_new_tokens: int
  use_cache: bool
  reward: str
  rollout: str
  loss_agg: str
  reference: bool
  parser: str
  tokenizer: str
  eos_id: int | None


@dataclasses.dataclass(frozen=True)
class RolloutEnv:
  """Sampling and scoring with the step's (stopped) parameters."""
  model: Any
  params: Any
  spec: Spec
  hp: dict[str, jax.Array]

  def sample(self, prompt: jax.Array, lengths: jax.Array, rng: jax.Array,
             temperature: jax.Array | None = None,
             group_size: int | None = None) -> Rollout:
    """G completions per prompt (the method's temperature by default)."""
    return rollout_lib.sample_groups(
        self.model, self.params, prompt, lengths, rng,
        group_size=group_size or self.spec.group_size,
        max_new_tokens=self.spec.max_new_tokens,
        temperature=(self.hp["temperature"] if temperature is None
                     else temperature),
        top_p=self.hp["top_p"], eos_id=self.spec.eos_id,
        use_cache=self.spec.use_cache)

  def forward(self, inputs: dict[str, jax.Array]) -> dict[str, jax.Array]:
    return self.model.apply({"params": self.params}, inputs)

  def reward_inputs(self, rollout: Rollout, answer: jax.Array
                    ) -> RewardInputs:
    comp = rollout_lib.completion_tokens(rollout)
    mask = rollout["completion_mask"]
    if self.spec.parser == "jax":
      parsed = verifiable.parse_answers(comp, mask)
    else:
      parsed = verifiable.host_parse_answers(comp, mask, self.spec.tokenizer)
    g = rollout["tokens"].shape[0] // answer.shape[0]
    return RewardInputs(rollout, comp, mask, jnp.repeat(answer, g), *parsed,
                        group_size=g, forward=self.forward)

  def score(self, rollout: Rollout, answer: jax.Array
            ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """`(rewards [N], metrics)` from the method's reward; non-finite
    rewards stop the run with an error naming the reward."""
    rewards, metrics = REWARDS.get(self.spec.reward)(
        self.hp, self.reward_inputs(rollout, answer))
    jax.debug.callback(functools.partial(_check_rewards, self.spec.reward),
                       jnp.sum(~jnp.isfinite(rewards)))
    return rewards, metrics


def _check_rewards(name: str, n_bad: Any) -> None:
  if int(n_bad):
    raise FloatingPointError(
        f"reward {name!r} returned {int(n_bad)} non-finite rewards; "
        "allowed: finite values")


@register_reward("arithmetic")
def arithmetic_reward(hp, inputs: RewardInputs):
  """correct_reward / wrong_reward / unparsable_reward by exact match."""
  correct = verifiable.verify(inputs.parsed, inputs.parsable,
                              inputs.overflow, inputs.answer)
  r = jnp.where(correct, hp["correct_reward"],
                jnp.where(inputs.parsable, hp["wrong_reward"],
                          hp["unparsable_reward"]))
  return r, {"accuracy": jnp.mean(correct.astype(jnp.float32)),
             "parse_rate": jnp.mean(inputs.parsable.astype(jnp.float32))}


@register_rollout("single_turn")
def single_turn(env: RolloutEnv, prompts: dict[str, jax.Array],
                rng: jax.Array) -> Rollout:
  """G completions per prompt, scored, with group advantages."""
  ro = env.sample(prompts["prompt"], prompts["prompt_length"], rng)
  rewards, metrics = env.score(ro, prompts["answer"])
  ro["rewards"] = rewards
  ro["advantages"] = group_advantages(rewards, env.spec.group_size,
                                      env.hp["adv_eps"])
  ro["metrics"] = metrics
  return ro


@register_regularizer("none")
def no_regularizer(method_config: dict[str, Any]) -> Regularizer:
  del method_config
  return Regularizer()


# --------------------------------------------------------------- method
def policy_apply(spec: Spec, reg: Regularizer, hp, ctx, params,
                 method_state, rollout: Rollout, rng):
  """The GRPO objective on a rollout batch: `(loss, StepAux)`."""
  del rng
  outputs, _ = ctx.forward(params, rollout_lib.forward_inputs(rollout))
  logp, entropy = rollout_lib.completion_logprobs(
      outputs["logits"], rollout, hp["temperature"])
  mask = rollout["completion_mask"]
  how = spec.loss_agg
  # One update per rollout: the sampling policy is the current one, so the
  # old log-probs are the current ones without gradient (ratio 1, as
  # veRL's recomputed old_log_probs with ppo_epochs=1, one mini-batch).
  old = rollout.get("old_logprobs", jax.lax.stop_gradient(logp))
  pg, metrics = clipped_policy_loss(
      logp, old, rollout["advantages"], mask, hp["eps_low"], hp["eps_high"],
      hp["clip_dual"], how)
  ent = aggregate(entropy, mask, how)
  loss = pg - hp["entropy_coef"] * ent
  state = dict(method_state)
  if spec.reference:
    ref_out, _ = ctx.forward(method_state["ref"],
                             rollout_lib.forward_inputs(rollout), train=False)
    ref_logp, _ = rollout_lib.completion_logprobs(
        jax.lax.stop_gradient(ref_out["logits"]), rollout, hp["temperature"])
    kl = aggregate(low_var_kl(logp, ref_logp), mask, how)
    loss = loss + hp["kl_coef"] * kl
    metrics["kl"] = kl
  if reg.loss is not None:
    stats = TokenStats(logp, entropy, old, mask, rollout["advantages"],
                       rollout["rewards"])
    term, reg_metrics, state["reg"] = reg.loss(hp, method_state["reg"],
                                               stats, how)
    loss = loss + term
    metrics.update(reg_metrics)
  sg = jax.lax.stop_gradient
  metrics.update(
      pg_loss=pg, entropy=sg(ent), neg_logp=sg(aggregate(-logp, mask, how)),
      response_length=jnp.mean(jnp.sum(mask, 1)))
  return loss, method_lib.StepAux(metrics, ctx.model_state, state)


def rollout_value_and_grad(spec: Spec, reg: Regularizer, hp, ctx, params,
                           method_state, batch, rng, loss_fn):
  """The train step's gradient hook: sample and score a rollout from the
  prompt batch, then differentiate `policy_apply` on it."""
  del loss_fn   # the harness's closure over the prompt batch
  env = RolloutEnv(ctx.model, jax.lax.stop_gradient(params), spec, hp)
  r_sample, r_reg, r_loss = jax.random.split(rng, 3)
  ro = ROLLOUTS.get(spec.rollout)(env, batch, r_sample)
  rollout_metrics = ro.pop("metrics", {})
  rollout_metrics["reward"] = jnp.mean(ro["rewards"])
  rollout_metrics["sample_entropy"] = aggregate(
      ro["entropies"], ro["completion_mask"])
  if reg.prepare is not None:
    ro, prep_metrics = reg.prepare(hp, method_state["reg"], env, ro, batch,
                                   r_reg)
    rollout_metrics.update(prep_metrics)
  ro = jax.tree.map(jax.lax.stop_gradient, ro)
  (loss, aux), grads = ctx.value_and_grad(
      lambda p: policy_apply(spec, reg, hp, ctx, p, method_state, ro, r_loss),
      params)
  aux = aux._replace(metrics={**rollout_metrics, **aux.metrics})
  return (loss, aux), grads


def _load(method_cfg: dict[str, Any], run) -> dict[str, Any]:
  """Host: the parameters of the HF checkpoint `method_cfg["checkpoint"]`
  (a Llama/Qwen2 save_pretrained directory; common.convert)."""
  del run
  from common.convert import hf_checkpoint  # pylint: disable=g-import-not-at-top
  _, params = hf_checkpoint.load_hf_checkpoint(method_cfg["checkpoint"])
  return {"hf_params": params}


def _init(spec: Spec, reg: Regularizer, rng, ctx):
  del rng
  loaded = (ctx.extras or {}).get("hf_params") if isinstance(
      ctx.extras, dict) else None
  if loaded is not None:
    want = jax.tree.map(lambda x: tuple(x.shape), ctx.params)
    got = jax.tree.map(lambda x: tuple(x.shape), loaded)
    if want != got:
      raise ValueError(
          "the checkpoint's parameters do not fit config.model (set "
          "model.kwargs to the checkpoint's shape and data.kwargs.vocab_size "
          "to its vocabulary)")
    ctx = ctx._replace(params=loaded)
  max_len = ctx.model.config.max_len if ctx.model is not None else None
  if ctx.sample is not None and max_len is not None:
    p = jax.eval_shape(lambda k: ctx.sample(k, 1),
                       jax.random.PRNGKey(0))["prompt"].shape[1]
    if p + spec.max_new_tokens > max_len:
      raise ValueError(
          f"prompts of {p} tokens + max_new_tokens {spec.max_new_tokens} = "
          f"{p + spec.max_new_tokens} exceed the model's context max_len "
          f"{max_len}; allowed: prompt_len + max_new_tokens <= {max_len}")
  state = {"reg": reg.init(ctx) if reg.init is not None else {}}
  if spec.reference:
    state["ref"] = ctx.params
  if loaded is not None:
    return method_lib.InitOutput(method_state=state, params=loaded)
  return state


def method_config(cfg: dict[str, Any], extra: dict[str, Any] | None = None
                  ) -> dict[str, Any]:
  """`cfg` over the defaults (GRPO's and a subclass's `extra`), checked."""
  defaults = {**DEFAULTS, **(extra or {})}
  unknown = set(cfg) - set(defaults)
  if unknown:
    raise ValueError(f"method config has {sorted(unknown)}; allowed keys "
                     f"{sorted(defaults)}")
  cfg = {**defaults, **cfg}
  if int(cfg["group_size"]) < 2:
    raise ValueError(
        f"group_size={cfg['group_size']}: GRPO's group-normalised "
        "advantages are undefined for one completion per prompt; allowed: "
        "group_size >= 2")
  return cfg


def make_method(name: str, cfg: dict[str, Any],
                regularizer: Regularizer | None = None,
                extra: dict[str, Any] | None = None,
                rules: dict[str, Any] | None = None) -> method_lib.Method:
  """A GRPO-family `Method` (`name`'s section is `cfg`)."""
  cfg = method_config(cfg, extra)
  if regularizer is None:
    regularizer = REGULARIZERS.get(cfg["regularizer"])(cfg)
  eos = int(cfg["eos_id"])
  if eos < 0:    # the tokenizer's
    eos = tokenizers.get_tokenizer(cfg["tokenizer"]).eos_id
  spec = Spec(int(cfg["group_size"]), int(cfg["max_new_tokens"]),
              bool(cfg["use_cache"]), cfg["reward"], cfg["rollout"],
              cfg["loss_agg"], bool(cfg["reference"]), cfg["parser"],
              cfg["tokenizer"], eos)
  if cfg["reward"] not in REWARDS:
    REWARDS.get(cfg["reward"])      # the registry names the valid ones
  if cfg["rollout"] not in ROLLOUTS:
    ROLLOUTS.get(cfg["rollout"])

  def hparams(method_cfg, run):
    del run
    full = method_config(method_cfg, extra)
    return {k: float(v) for k, v in full.items() if k not in STATIC
            and isinstance(v, (int, float)) and not isinstance(v, bool)}

  return method_lib.Method(
      name=name, hparams=hparams,
      init=functools.partial(_init, spec, regularizer),
      apply=functools.partial(policy_apply, spec, regularizer),
      value_and_grad=functools.partial(rollout_value_and_grad, spec,
                                       regularizer),
      load=_load if cfg["checkpoint"] else None,
      rules={**RULES, **(rules or {})})


@method_lib.register_method("grpo")
def make(cfg: dict[str, Any]) -> method_lib.Method:
  return make_method("grpo", cfg)


def log_vocab(num_classes: int) -> float:
  return math.log(num_classes)

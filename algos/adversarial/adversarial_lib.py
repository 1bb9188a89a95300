"""Pieces shared by the adversarial methods: the in-step attack and frozen
teachers.

* `adversarial_inputs`: PGD on the trained model's own cross-entropy, run
  inside the jitted step (`common.eval.attacks`), in [0, 1] pixel space
  whatever the data normalisation (`attacks.pixel_view`); the model runs
  in eval mode during the attack (BatchNorm on running statistics, no
  statistics update), as the MTARD / TRADES training attacks do.
* Frozen teachers: the `distill` protocol trains each teacher as its own
  run and hands `{name: {"params", "model_state"}}` to the student's
  method as `ctx.extras["teachers"]`; `init` keeps them in `method_state`
  (on device, checkpointed with the state, never updated) and `apply`
  runs them with `teacher_logits` (eval mode, gradient-stopped).

Common config keys of an attack (`ATTACK_DEFAULTS`): `eps`, `step_size`,
`attack_steps` (traced, a `lax.fori_loop`; with `attack_unroll` a static,
unrolled count, which XLA:CPU runs faster for convolutions), `bounded`
(clip to [0, 1] pixels; False for vector inputs).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from common import config as config_lib
from common.core import method as method_lib
from common.eval import attacks

PyTree = Any

ATTACK_DEFAULTS = dict(eps=8.0 / 255.0, step_size=2.0 / 255.0,
                       attack_steps=10, attack_unroll=False, bounded=True)
ATTACK_RULES = {
    "eps": config_lib.at_least(0.0),
    "step_size": config_lib.at_least(0.0),
    "attack_steps": config_lib.at_least(0, integer=True),
}


def settings(config: dict[str, Any], defaults: dict[str, Any]
             ) -> dict[str, Any]:
  """`defaults` updated with `config`; unknown keys are a one-line error."""
  unknown = sorted(set(config) - set(defaults))
  if unknown:
    raise config_lib.ConfigError(
        f"unknown method keys {unknown}; allowed: {sorted(defaults)}")
  return {**defaults, **config}


def adversarial_inputs(ctx: method_lib.StepContext, params: PyTree,
                       labels: jax.Array, hp: dict[str, jax.Array],
                       rng: jax.Array | None, cfg: dict[str, Any], *,
                       start: str, start_scale: jax.Array | float = 1e-3
                       ) -> jax.Array:
  """PGD examples of `ctx.inputs` in model-input space (`[b, ...]`).

  Maximises the cross-entropy of `labels` `[b]` under `params` (eval mode,
  gradient-stopped) with `hp`'s `eps`, `step_size`, `attack_steps`.
  """
  pixels, to_input = attacks.pixel_view(ctx.normalize, ctx.inputs)
  frozen = jax.lax.stop_gradient(params)
  logits = lambda u: ctx.forward(frozen, to_input(u), train=False)[0][
      "logits"]
  if cfg["attack_unroll"]:
    steps = int(cfg["attack_steps"])
  else:
    steps = hp["attack_steps"].astype(jnp.int32)
  x_adv = attacks.pgd(
      attacks.cross_entropy_loss(logits, labels), pixels, eps=hp["eps"],
      step_size=hp["step_size"], steps=steps, rng=rng, start=start,
      start_scale=start_scale,
      bounds=(0.0, 1.0) if cfg["bounded"] else None,
      unroll=bool(cfg["attack_unroll"]))
  return to_input(x_adv)


def teachers_from_extras(ctx: method_lib.InitContext,
                         names: tuple[str, ...]) -> dict[str, PyTree]:
  """`{name: {"params", "model_state"}}` of the teachers `names` handed
  over by the protocol (`ctx.extras["teachers"]`), as float32 device
  arrays for `method_state`."""
  extras = ctx.extras or {}
  if "protocol" in extras and "method" in extras:   # method.load also ran
    extras = extras["protocol"]
  given = extras.get("teachers", {}) if isinstance(extras, dict) else {}
  missing = [n for n in names if n not in given]
  if missing:
    raise ValueError(
        f"method {ctx.config!r} needs frozen teachers {list(names)}, got "
        f"{sorted(given)}; run it with protocol 'distill' and "
        f"config.teachers.<name> = (overrides of the teacher's run)")
  return {n: jax.tree.map(jnp.asarray, {"params": given[n]["params"],
                                        "model_state": given[n][
                                            "model_state"]})
          for n in names}


def teacher_logits(ctx: method_lib.StepContext, teacher: PyTree,
                   inputs: jax.Array) -> jax.Array:
  """`[b, C]` eval-mode, gradient-stopped logits of a frozen teacher (the
  student's architecture) on `inputs`."""
  out, _ = ctx.forward(teacher["params"], inputs, train=False,
                       model_state=teacher["model_state"])
  return jax.lax.stop_gradient(out["logits"].astype(jnp.float32))


def row_mask(batch: dict[str, jax.Array], n: int) -> jax.Array:
  """`[n]` bool: the batch's valid rows (all when it has no `mask`)."""
  return batch["mask"] if "mask" in batch else jnp.ones((n,), bool)


def hparams_with(defaults: dict[str, Any]):
  """`Method.hparams`: the numbers of `defaults` updated with the config."""
  def hparams(config, run):
    return method_lib.default_hparams(settings(config, defaults), run)
  return hparams


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """`[b]` cross-entropy of `[b, C]` logits and `[b]` int labels."""
  logp = jax.nn.log_softmax(logits.astype(jnp.float32))
  return -jnp.take_along_axis(logp, labels[:, None], -1)[:, 0]

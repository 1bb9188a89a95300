"""Non-saturating GAN training through the harness (alternating updates).

Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014
(arXiv:1406.2661), with the non-saturating generator loss and the logistic
discriminator loss + R1 penalty of StyleGAN2 (Karras et al., CVPR 2020,
arXiv:1912.04958; rosinality/stylegan2-pytorch `train.py`, the code the
Adapt-then-Unlearn repo builds on):

  L_D = E softplus(D(G(z))) + E softplus(-D(x)) + r1/2 E |grad_x D(x)|^2
  L_G = E softplus(-D(G(z')))

The model the harness trains is the generator (`common/models/gan.py`,
input `z`); the discriminator and its Adam state live in `method_state`
(Method v2's "second player"). Each step, inside `value_and_grad`:

1. the discriminator takes one step through `train_step.optimizer_step` on
   the batch's real images and `G(z)` for the batch's latents (G frozen);
2. the generator's loss is taken against the *updated* discriminator on
   fresh latents `z'` (as the official loop draws new noise), and the
   harness applies G's optimizer step.

Differences from the official StyleGAN2 loop, on purpose: R1 every step
with weight r1/2 instead of lazily every 16 steps with weight 16 r1/2
(same expectation), no path-length regulariser, no style mixing, no G EMA
(all StyleGAN2-architecture specifics).

Methods built on this loop (Adapt-then-Unlearn) swap the real images
(`real_fn`) and add a generator penalty (`penalty_fn`); `make_gan` is the
shared builder. Config (`config.method.gan`): `d_lr`, `d_b1`, `d_b2`
(discriminator Adam; official lr 0.002 * 16/17, betas (0, 0.99^(16/17))),
`r1` (0 compiles the penalty out), `d_width` (discriminator channels).
Batches: `z [b, latent]`, `image [b, s, s, c]` (`common/data/gan_images`).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from common import config as config_lib
from common.core import method as method_lib
from common.core import optim
from common.core import train_step as train_step_lib
from common.models import gan as gan_models

DEFAULTS = dict(d_lr=0.002 * 16 / 17, d_b1=0.0, d_b2=0.99 ** (16 / 17),
                r1=10.0, d_width=32)
RULES = {"d_lr": config_lib.greater_than(0.0),
         "d_b1": config_lib.between(0.0, 1.0),
         "d_b2": config_lib.between(0.0, 1.0),
         "r1": config_lib.at_least(0.0),
         "d_width": config_lib.at_least(1, integer=True)}
_D_TX = optim.make_optimizer("adamw")

RealFn = Callable[[Any, Any, dict[str, jax.Array], jax.Array], jax.Array]
PenaltyFn = Callable[[Any, Any, Any], tuple[jax.Array, dict[str, jax.Array]]]


def d_logistic_loss(real_logits: jax.Array, fake_logits: jax.Array
                    ) -> jax.Array:
  """`mean softplus(-D(x)) + mean softplus(D(G(z)))` over `[b]` logits."""
  return (jnp.mean(jax.nn.softplus(-real_logits))
          + jnp.mean(jax.nn.softplus(fake_logits)))


def g_nonsaturating_loss(fake_logits: jax.Array) -> jax.Array:
  """`mean softplus(-D(G(z)))` over `[b]` logits."""
  return jnp.mean(jax.nn.softplus(-fake_logits))


def r1_penalty(disc_fn: Callable[[jax.Array], jax.Array], real: jax.Array
               ) -> jax.Array:
  """`E_x |grad_x D(x)|^2` over real images `[b, ...]`."""
  g = jax.grad(lambda x: jnp.sum(disc_fn(x)))(real)
  return jnp.mean(jnp.sum(jnp.square(g).reshape(g.shape[0], -1), axis=1))


def d_hparams(hp: dict[str, jax.Array]) -> dict[str, Any]:
  """The discriminator's `optimizer_step` hyperparameters (traced)."""
  zero = jnp.zeros((), jnp.float32)
  return {"schedule": {"learning_rate": hp["d_lr"], "warmup_steps": zero},
          "optim": {"b1": hp["d_b1"], "b2": hp["d_b2"], "eps": 1e-8,
                    "weight_decay": zero, "max_norm": 1.0}}


def batch_real(hp, method_state, batch, rng):
  del hp, method_state, rng
  return batch["image"]


def make_gan(name: str, method_config: dict[str, Any], *,
             real_fn: RealFn = batch_real,
             penalty_fn: PenaltyFn | None = None,
             init_fn: Callable[[jax.Array, Any], dict] | None = None,
             rules: dict | None = None) -> method_lib.Method:
  """A GAN method: alternating D / G updates (see the module docstring).

  Args:
    name: the method's name.
    method_config: its config section (the keys of `DEFAULTS` and more).
    real_fn: `(hp, method_state, batch, rng) -> [b, s, s, c]` real images
      of this step (default `batch["image"]`).
    penalty_fn: `(hp, generator_params, method_state) -> (scalar, metrics)`
      added to the generator's loss (EWC, repulsion).
    init_fn: `(rng, InitContext) -> dict` merged into the method state.
    rules: the method's config rules (default `RULES`).
  """
  cfg = {**DEFAULTS, **method_config}
  disc = gan_models.Discriminator(width=int(cfg["d_width"]))
  use_r1 = float(cfg["r1"]) > 0

  def init(rng, ctx):
    if ctx.sample is None:
      raise config_lib.ConfigError(
          f"method {name!r} needs config.data.source='generator' (batches "
          "with latents 'z' and real 'image', e.g. gan_images)")
    example = jax.eval_shape(lambda k: ctx.sample(k, 1),
                             jax.random.PRNGKey(0))
    k_d, k_extra = jax.random.split(rng)
    previous = (ctx.extras or {}).get("previous_method_state") if isinstance(
        ctx.extras, dict) else None
    if previous is not None:   # a later stage: the discriminator continues
      state = {"disc": previous["disc"], "disc_opt": previous["disc_opt"]}
    else:
      d_params = disc.init(k_d, jnp.zeros(example["image"].shape))["params"]
      state = {"disc": d_params, "disc_opt": _D_TX.init(d_params)}
    if init_fn is not None:
      state.update(init_fn(k_extra, ctx))
    return state

  def value_and_grad(hp, ctx, params, method_state, batch, rng, loss_fn):
    del loss_fn
    k_real, k_z = jax.random.split(rng)
    real = real_fn(hp, method_state, batch, k_real)
    z = ctx.inputs
    fake = jax.lax.stop_gradient(
        ctx.forward(params, z, train=False)[0]["images"])

    def d_loss_fn(d_params):
      d = lambda x: disc.apply({"params": d_params}, x)["logits"]
      real_logits, fake_logits = d(real), d(fake)
      loss = d_logistic_loss(real_logits, fake_logits)
      metrics = {"d_loss": loss, "real_score": jnp.mean(real_logits),
                 "fake_score": jnp.mean(fake_logits)}
      if use_r1:
        r1 = r1_penalty(d, real)
        loss = loss + 0.5 * hp["r1"] * r1
        metrics["r1"] = r1
      return loss, metrics

    (_, d_metrics), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(
        method_state["disc"])
    d_params, d_opt, _ = train_step_lib.optimizer_step(
        _D_TX, "constant", d_hparams(hp), ctx.step, method_state["disc"],
        method_state["disc_opt"], d_grads)
    new_state = {**method_state, "disc": d_params, "disc_opt": d_opt}
    z_g = jax.random.normal(k_z, z.shape, z.dtype)

    def g_loss_fn(p):
      out, model_state = ctx.forward(p, z_g)
      logits = disc.apply({"params": d_params}, out["images"])["logits"]
      adv = g_nonsaturating_loss(logits)
      metrics = {**d_metrics, "g_adv": adv}
      loss = adv
      if penalty_fn is not None:
        pen, pen_metrics = penalty_fn(hp, p, new_state)
        loss = loss + pen
        metrics.update(pen_metrics)
      return loss, method_lib.StepAux(metrics, model_state, new_state)

    return ctx.value_and_grad(g_loss_fn, params)

  def hparams(method_config, run):
    return method_lib.default_hparams({**DEFAULTS, **method_config}, run)

  return method_lib.Method(name=name, hparams=hparams, init=init,
                           value_and_grad=value_and_grad,
                           rules=rules or RULES)


@method_lib.register_method("gan")
def make(method_config: dict[str, Any]) -> method_lib.Method:
  return make_gan("gan", method_config)

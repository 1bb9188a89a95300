"""Adapt-then-Unlearn: unlearning a class from a pretrained GAN.

Paper: Adapt then Unlearn: Exploring Parameter Space Semantics for
Unlearning in Generative Adversarial Networks, Tiwary, Guha, Panda &
Prathosh, TMLR 2025, arXiv:2309.14054. Official code (PyTorch, StyleGAN2):
https://github.com/atriguha/Adapt_Unlearn

Two stages, both GAN training (`algos/generative/gan.py`) that continue the
pretrained generator *and* discriminator (the protocol `staged` hands the
pretrained method state on):

1. `stage="adapt"` (Negative_Adaptation/*/stylegan2_ewc.py): the real
   images are *negatives*: the first `num_real` of `candidates` samples of
   the pretrained generator that the classifier labels `unwanted`; the
   generator loss adds EWC,

     L_EWC = lambda/2 sum_i F_i (theta_i - theta0_i)^2,
     F = mean_z (d D(G_theta0(z)) / d theta)^2

   (model.py `estimate_fisher` / `ewc_loss`: the squared per-sample
   gradient of the pretrained discriminator's logit, over `fisher_samples`
   latents, official 32). The result theta_N moves towards the unwanted
   class along directions the pretrained GAN deems unimportant.
2. `stage="unlearn"` (Unlearning/*/train_different_losses.py): from theta0
   again, the real images are *positives* (pretrained samples *not*
   labelled `unwanted`, official 5000), plus a repulsion from the K adapted
   models theta_N^k. The official distance (`calc_difference_param_new`):

     d = K / (2 T) sum_k sum_t mean((theta_t - theta_N^k_t)^2)

   over the T parameter tensors (it multiplies by K where an average
   would divide: kept as written), and with `gamma` (val_factor = 1/gamma)

     NL2 ("l2"):   L = L_G - gamma d
     IL2 ("reci"): L = L_G + gamma / d
     EL2 ("exp"):  L = L_G + 100 exp(-gamma d)

   `repulsion="none"` (or gamma = 0) is the baseline: plain GAN
   fine-tuning on the positives.

Deviations: the classifier is the closed-form digit classifier of
`common/eval/gan_eval.py` (official: a LeNet-5); EWC and the distance span
every generator parameter (official: EWC on StyleGAN2's `convs` only, the
distance on all); the positive/negative banks are drawn once at `init` on
device from the pretrained generator, as the official FeedbackData sets are
drawn once before training.

Config (`config.method.adapt_unlearn`): `stage`, `unwanted`, `adapt_index`
(copy i of stage 1: another draw of negatives), `candidates`, `num_real`,
`ewc_lambda` (0 compiles EWC out), `fisher_samples`, `repulsion`, `gamma`,
and the GAN keys of `algos/generative/gan.py`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from algos.generative import gan
from common import config as config_lib
from common.core import method as method_lib
from common.eval import gan_eval
from common.models import gan as gan_models

STAGES = ("adapt", "unlearn")
REPULSIONS = ("nl2", "il2", "el2", "none")
EL2_WEIGHT = 100.0   # the official constant in front of exp(-gamma d)
DEFAULTS = dict(stage="unlearn", unwanted=0, adapt_index=0, candidates=4096,
                num_real=2048, ewc_lambda=0.0, fisher_samples=32,
                repulsion="nl2", gamma=1.0, **gan.DEFAULTS)
RULES = {**gan.RULES,
         "stage": config_lib.one_of(*STAGES),
         "unwanted": config_lib.between(0, 9),
         "adapt_index": config_lib.at_least(0, integer=True),
         "candidates": config_lib.at_least(1, integer=True),
         "num_real": config_lib.at_least(1, integer=True),
         "ewc_lambda": config_lib.at_least(0.0),
         "fisher_samples": config_lib.at_least(1, integer=True),
         "repulsion": config_lib.one_of(*REPULSIONS),
         "gamma": config_lib.at_least(0.0)}
_BANK_STREAM = 0xBA4C


# ----------------------------------------------------------- the losses
def fisher_diagonal(logit_fn, params: Any, z: jax.Array) -> Any:
  """`mean_i (d logit(params, z_i) / d params)^2` over latents `[n, d]`.

  Args:
    logit_fn: `(params, z [1, d]) -> [1]` the discriminator's logit of the
      generator's sample.
    params: the (pretrained) generator parameters.
    z: latents `[n, d]`.
  """
  grad_one = jax.grad(lambda p, zi: logit_fn(p, zi[None])[0])
  grads = jax.vmap(grad_one, in_axes=(None, 0))(params, z)
  return jax.tree.map(lambda g: jnp.mean(jnp.square(g), axis=0), grads)


def ewc_penalty(params: Any, anchor: Any, fisher: Any, lam: jax.Array
                ) -> jax.Array:
  """`lam / 2 * sum F (theta - theta0)^2` over every leaf."""
  terms = jax.tree.map(lambda p, a, f: jnp.sum(f * jnp.square(p - a)),
                       params, anchor, fisher)
  return 0.5 * lam * sum(jax.tree.leaves(terms))


def parameter_distance(params: Any, adapted: list[Any]) -> jax.Array:
  """The official `calc_difference_param_new`: `K / (2 T) sum_k sum_t
  mean((theta_t - theta_k_t)^2)` over K adapted models, T tensors."""
  if not adapted:
    raise ValueError("parameter_distance needs at least one adapted model")
  leaves = jax.tree.leaves(params)
  total = sum(jnp.mean(jnp.square(p - q))
              for other in adapted
              for p, q in zip(leaves, jax.tree.leaves(other)))
  return total * len(adapted) / (2.0 * len(leaves))


def repulsion_loss(distance: jax.Array, kind: str, gamma: jax.Array
                   ) -> jax.Array:
  """NL2 `-gamma d`, IL2 `gamma / d`, EL2 `100 exp(-gamma d)`, none 0."""
  if kind == "nl2":
    return -gamma * distance
  if kind == "il2":
    return gamma / distance
  if kind == "el2":
    return EL2_WEIGHT * jnp.exp(-gamma * distance)
  if kind == "none":
    return jnp.zeros((), jnp.float32)
  raise ValueError(f"repulsion {kind!r}; allowed {REPULSIONS}")


# ----------------------------------------------------------- the method
def _classify(images: jax.Array) -> jax.Array:
  """The evaluator's digit classifier in `jnp`: `[n, s, s, c] -> [n]`."""
  clf = gan_eval.classifier()
  x = jnp.mean(images, axis=-1)
  n, s = x.shape[0], x.shape[1]
  x = x.reshape(n, 8, s // 8, 8, s // 8).mean((2, 4)).reshape(n, 64)
  feats = jax.nn.relu(x @ jnp.asarray(clf.w, jnp.float32)
                      + jnp.asarray(clf.b, jnp.float32))
  return jnp.argmax(feats @ jnp.asarray(clf.readout, jnp.float32), axis=1)


def make_adapt_unlearn(method_config: dict[str, Any]) -> method_lib.Method:
  cfg = {**DEFAULTS, **method_config}
  stage, kind = cfg["stage"], cfg["repulsion"]
  for key, allowed in (("stage", STAGES), ("repulsion", REPULSIONS)):
    if cfg[key] not in allowed:
      raise config_lib.ConfigError(
          f"config.method.adapt_unlearn.{key}={cfg[key]!r}; allowed "
          f"{allowed}")
  unwanted, num_real = int(cfg["unwanted"]), int(cfg["num_real"])
  candidates = int(cfg["candidates"])
  use_ewc = float(cfg["ewc_lambda"]) > 0
  repel = stage == "unlearn" and kind != "none"
  disc = gan_models.Discriminator(width=int(cfg["d_width"]))

  def init_fn(rng, ctx):
    extras = ctx.extras if isinstance(ctx.extras, dict) else {}
    previous = extras.get("previous_method_state")
    if previous is None:
      raise config_lib.ConfigError(
          "adapt_unlearn starts from a pretrained GAN: run it with "
          "protocol 'staged' (pretrain.overrides: method.name=gan)")
    g = lambda p, z: ctx.model.apply({"params": p}, z)["images"]
    latent = ctx.params["stem"]["kernel"].shape[0]
    # The real bank: pretrained samples the classifier calls unwanted
    # (adapt) or not (unlearn); the first `num_real` of them.
    key = jax.random.fold_in(jax.random.fold_in(rng, _BANK_STREAM),
                             int(cfg["adapt_index"]))
    k_bank, k_fisher = jax.random.split(key)
    images = g(ctx.params, jax.random.normal(k_bank, (candidates, latent)))
    hit = _classify(images) == unwanted
    keep = hit if stage == "adapt" else ~hit
    order = jnp.argsort(~keep, stable=True)[:num_real]
    state = {"bank": images[order],
             "bank_size": jnp.minimum(jnp.sum(keep), num_real)}
    if use_ewc:
      d_params = previous["disc"]
      logit = lambda p, z: disc.apply({"params": d_params}, g(p, z))[
          "logits"]
      z = jax.random.normal(k_fisher, (int(cfg["fisher_samples"]), latent))
      state["fisher"] = fisher_diagonal(logit, ctx.params, z)
      state["anchor"] = ctx.params
    if repel:
      adapted = extras.get("stage_params") or []
      if not adapted:
        raise config_lib.ConfigError(
            f"adapt_unlearn repulsion={kind!r} needs the adapted models: "
            "stage.copies >= 1 with stage.overrides setting "
            "method.adapt_unlearn.stage=adapt")
      state["adapted"] = list(adapted)
    return state

  def real_fn(hp, method_state, batch, rng):
    del hp
    n = batch["z"].shape[0]
    i = jax.random.randint(rng, (n,), 0, jnp.maximum(
        method_state["bank_size"], 1))
    return method_state["bank"][i]

  def penalty_fn(hp, params, method_state):
    loss = jnp.zeros((), jnp.float32)
    metrics = {"bank_size": method_state["bank_size"].astype(jnp.float32)}
    if use_ewc:
      ewc = ewc_penalty(params, method_state["anchor"],
                        method_state["fisher"], hp["ewc_lambda"])
      loss, metrics["ewc"] = loss + ewc, ewc
    if repel:
      dist = parameter_distance(params, method_state["adapted"])
      rep = repulsion_loss(dist, kind, hp["gamma"])
      loss = loss + rep
      metrics.update(distance=dist, repulsion=rep)
    return loss, metrics

  return gan.make_gan("adapt_unlearn", cfg, real_fn=real_fn,
                      penalty_fn=penalty_fn, init_fn=init_fn, rules=RULES)


@method_lib.register_method("adapt_unlearn")
def make(method_config: dict[str, Any]) -> method_lib.Method:
  return make_adapt_unlearn(method_config)


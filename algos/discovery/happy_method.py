"""Happy (arXiv:2410.06535) and continual SimGCD as one Method for the
`continual_gcd` protocol. Official code: mashijie1028/Happy-CGCD.

The model is `discovery_head` (cosine classifier `classifier/kernel`
`[C, d]` over the backbone features, projection MLP); all `C` rows exist
from the start and `method_state` masks the classes not active yet, so a
stage's state has the shapes of every other stage's.

Stage 0 (no transition in `ctx.extras`): SimGCD on the labelled old
classes (`active_classes` of them), the official offline step
(`train_offline`: every example labelled).

Stage s >= 1 (`ctx.extras` = the protocol's transition from stage s-1):
`init` carries the previous model as a frozen teacher, marks the classes
active at s-1 as seen, updates the prototypes (true labels of stage 0's
data after stage 0; for the classes introduced at s-1, the means of stage
s-1's data predicted as them, the head row when none is), the shared
radius (from stage 0) and the hardness, and initialises the new rows of
the head by k-means on stage s's data (`init_new_head`). The step is the
official `train_online`: self-distillation + InfoNCE on two views (no
label is used), the plain me-max (`memax_weight`, SimGCD's; 0 in Happy)
and the three group-wise terms, prototype-augmentation CE with
hardness-aware sampling and feature distillation to the teacher.

Continual SimGCD is this method with `memax_weight > 0` and the Happy
weights (`memax_old_new/old_in/new_in`, `proto_aug_weight`,
`feat_distill_weight`) at 0, `init_new_head = False`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from algos.discovery import happy
from algos.discovery import simgcd
from common import config as config_lib
from common.core import method as method_lib

HEAD = "classifier"


def _kernel(params) -> jax.Array:
  return params[HEAD]["kernel"]


def _with_kernel(params, kernel):
  return {**params, HEAD: {**params[HEAD], "kernel": kernel}}


def _stage0_state(ctx: method_lib.InitContext) -> dict[str, Any]:
  c, d = _kernel(ctx.params).shape
  active = jnp.arange(c) < ctx.config["active_classes"]
  return {"stage": jnp.zeros((), jnp.int32), "seen": active,
          "active": active, "prototypes": jnp.zeros((c, d), jnp.float32),
          "hardness": jnp.zeros((c,), jnp.float32),
          "radius": jnp.zeros((), jnp.float32),
          "teacher": {"params": ctx.params, "model_state": ctx.model_state}}


def _updated_prototypes(prev_ms, prev_data, prev_kernel):
  """Prototypes `[C, d]` and radius after the previous stage."""
  c = prev_kernel.shape[0]
  feats = jnp.asarray(prev_data["features"])
  valid = jnp.asarray(prev_data["mask"], bool)
  if int(prev_ms["stage"]) == 0:   # labelled stage: true labels
    labels = jnp.asarray(prev_data["label"], jnp.int32)
    if "labelled" in prev_data:
      valid = valid & jnp.asarray(prev_data["labelled"], bool)
    protos, var, _ = happy.class_prototypes(feats, labels, valid, c)
    radius = happy.shared_radius(var, jnp.asarray(prev_ms["active"]))
    return jnp.where(jnp.asarray(prev_ms["active"])[:, None], protos, 0.0), (
        radius)
  active = jnp.asarray(prev_ms["active"])
  logits = happy.mask_logits(jnp.asarray(prev_data["logits"]), active)
  preds = jnp.argmax(logits, -1)
  protos, _, counts = happy.class_prototypes(feats, preds, valid, c)
  fresh = active & ~jnp.asarray(prev_ms["seen"])
  protos = jnp.where((counts > 0)[:, None], protos,
                     happy.normalize(prev_kernel))
  return (jnp.where(fresh[:, None], protos, prev_ms["prototypes"]),
          jnp.asarray(prev_ms["radius"]))


def init(rng: jax.Array, ctx: method_lib.InitContext):
  extras = ctx.extras
  if isinstance(extras, dict) and "protocol" in extras:
    extras = extras["protocol"]
  if extras is None:
    return _stage0_state(ctx)
  prev = extras["prev"]
  prev_ms = prev["method_state"]
  c = _kernel(ctx.params).shape[0]
  seen = jnp.asarray(prev_ms["active"], bool)
  active = (jnp.arange(c) < ctx.config["active_classes"]) | seen
  protos, radius = _updated_prototypes(prev_ms, extras["prev_data"],
                                       jnp.asarray(_kernel(prev["params"])))
  params = ctx.params
  if ctx.config.get("init_new_head", True):
    kernel = happy.kmeans_new_heads(
        rng, jnp.asarray(extras["data"]["features"]),
        jnp.asarray(extras["data"]["mask"], bool), _kernel(params), seen,
        active)
    params = _with_kernel(params, kernel)
  state = {"stage": jnp.asarray(extras["stage"], jnp.int32), "seen": seen,
           "active": active, "prototypes": protos.astype(jnp.float32),
           "hardness": happy.prototype_hardness(protos, seen),
           "radius": radius.astype(jnp.float32),
           "teacher": {"params": prev["params"],
                       "model_state": prev["model_state"]}}
  return method_lib.InitOutput(method_state=jax.tree.map(jnp.asarray, state),
                               params=params)


def _two_views(ctx: method_lib.StepContext, batch, rng) -> jax.Array:
  """`[2b, ...]` two augmented views stacked `[view 1; view 2]`."""
  k1, k2 = jax.random.split(rng)
  return jnp.concatenate([ctx.preprocess(batch, k1),
                          ctx.preprocess(batch, k2)])


def apply(hp, ctx: method_lib.StepContext, params, method_state, batch, rng):
  """One step of stage 0 (SimGCD, labelled) or of a continual stage."""
  ms = method_state
  k_views, k_proto = jax.random.split(rng)
  views = _two_views(ctx, batch, k_views)
  out, model_state = ctx.forward(params, views)
  b = batch["label"].shape[0]
  valid = jnp.tile(batch.get("mask", jnp.ones((b,), bool)), 2)
  labels = jnp.tile(batch["label"], 2)
  online = ms["stage"] > 0
  on = online.astype(jnp.float32)
  logits = happy.mask_logits(out["logits"], ms["active"])
  # stage 0 is fully labelled (official train_offline); later stages use
  # no label (train_online).
  terms, tau = simgcd.simgcd_terms(hp, ctx, logits, out["projection"],
                                   labels, valid & ~online, valid)
  # me-max over the active classes (the official head has only those)
  probs = jax.nn.softmax(logits / simgcd.STUDENT_TEMP)
  pbar = jnp.sum(probs * valid[:, None], 0) / jnp.maximum(jnp.sum(valid), 1)
  terms["memax"] = (jnp.sum(happy.xlogx(pbar))
                    + jnp.log(jnp.sum(ms["active"]).astype(jnp.float32)))
  w = jnp.where(online, 0.0, hp["sup_weight"])
  loss = ((1 - w) * (terms["distill"] + hp["memax_weight"] * terms["memax"])
          + w * terms["ce"] + (1 - w) * terms["infonce"] + w * terms["supcon"])
  soft, parts = happy.soft_entropy_reg(
      out["logits"], ms["seen"], ms["active"], hp["memax_old_new_weight"],
      hp["memax_old_in_weight"], hp["memax_new_in_weight"])
  # prototype augmentation over the seen classes (none at stage 0)
  has_protos = online & jnp.any(ms["seen"])
  pvalid = jnp.where(has_protos, ms["seen"], True)
  feats, plabels = happy.sample_prototype_features(
      k_proto, ms["prototypes"], ms["hardness"] * hp["hardness_aware"],
      pvalid, ms["radius"] * hp["radius_scale"], hp["hardness_temp"],
      logits.shape[0])
  plogits = happy.cosine_logits(feats, _kernel(params))
  proto = happy.proto_aug_ce(plogits, plabels, ms["active"])
  proto = jnp.where(has_protos, proto, 0.0)
  # the previous stage's model on the same views (skipped at stage 0)
  teacher = ms["teacher"]
  t_feats = jax.lax.cond(
      online, lambda: ctx.forward(teacher["params"], views, train=False,
                                  model_state=teacher["model_state"]
                                  )[0]["features"],
      lambda: jax.lax.stop_gradient(out["features"]))
  distill = happy.feature_distill(out["features"], t_feats)
  loss = loss + on * (soft + hp["proto_aug_weight"] * proto
                      + hp["feat_distill_weight"] * distill)
  metrics = {**terms, "teacher_temp": tau, "soft_entropy": soft,
             **{f"entropy_{k}": v for k, v in parts.items()},
             "proto_aug": proto, "feat_distill": distill,
             "new_share": jnp.sum(jnp.where(ms["active"] & ~ms["seen"],
                                            jnp.mean(probs, 0), 0.0))}
  return loss, method_lib.StepAux(metrics, model_state, ms)


def predict(hp, ctx: method_lib.StepContext, params, method_state, batch):
  """Eval outputs with the classes not active yet masked out."""
  del hp, batch
  out = dict(ctx.forward(params, train=False)[0])
  out["logits"] = happy.mask_logits(out["logits"], method_state["active"])
  return out


DEFAULTS = dict(
    active_classes=5, init_new_head=True,
    sup_weight=0.35, memax_weight=1.0, warmup_teacher_temp=0.07,
    teacher_temp=0.04, warmup_teacher_temp_epochs=30,
    memax_old_new_weight=1.0, memax_old_in_weight=1.0,
    memax_new_in_weight=1.0, proto_aug_weight=1.0, feat_distill_weight=1.0,
    radius_scale=1.0, hardness_temp=0.1, hardness_aware=1.0)
_NONNEG = ("memax_weight", "memax_old_new_weight", "memax_old_in_weight",
           "memax_new_in_weight", "proto_aug_weight", "feat_distill_weight",
           "radius_scale")
RULES = {
    **simgcd.RULES,
    "active_classes": config_lib.at_least(1, integer=True),
    "hardness_temp": config_lib.greater_than(0.0),
    "hardness_aware": config_lib.between(0.0, 1.0),
    **{k: config_lib.at_least(0.0) for k in _NONNEG},
}


def hparams(method_config: dict[str, Any], run) -> dict[str, float]:
  """The traced numbers (`active_classes` and `init_new_head` are read by
  `init` only)."""
  del run
  skip = ("active_classes", "init_new_head")
  return {k: float(v) for k, v in method_config.items()
          if k not in skip and isinstance(v, (int, float))
          and not isinstance(v, bool)}


@method_lib.register_method("happy")
def make(config: dict) -> method_lib.Method:
  del config
  return method_lib.Method(name="happy", apply=apply, init=init,
                           predict=predict, hparams=hparams, rules=RULES)

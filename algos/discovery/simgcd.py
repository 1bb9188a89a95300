"""SimGCD: Parametric Classification for Generalized Category Discovery.

Wen, Zhao, Qi. ICCV 2023. arXiv:2211.11727.
Official code (PyTorch): https://github.com/CVMI-Lab/SimGCD (`train.py`,
`model.py`).

Each batch holds labelled examples of old classes and unlabelled examples of
old and new classes (`common.data.category_discovery`: `label`, `labelled`).
Two augmented views of every example go through one forward of a
`discovery_head` model (cosine logits `l` `[2b, K]`, projections `z`); with
student temperature 0.1 the loss is

    (1 - w) * (L_distill + m * L_memax) + w * L_ce          (classifier)
  + (1 - w) * L_infonce + w * L_supcon                        (projection)

  L_ce      CE of `l / 0.1` on the labelled rows of both views.
  L_distill self-distillation across views: teacher `softmax(sg(l_v) /
            tau_t)`, student `log_softmax(l_u / 0.1)`, u != v, averaged;
            `tau_t` warms up linearly from 0.07 to 0.04 over the first 30
            epochs (`DistillLoss.teacher_temp_schedule`).
  L_memax   `sum_k pbar_k log pbar_k + log K`, `pbar` the mean of
            `softmax(l / 0.1)` over the batch's `2b` rows (mean-entropy
            maximisation).
  L_infonce SimCLR InfoNCE of the normalised projections, the other view
            the positive, temperature 1 (`info_nce_logits`' default).
  L_supcon  SupCon (temperature 0.07) on the labelled rows' projections.

The official code forwards both views as one batch of `2b`; so does this
one (BatchNorm statistics over both views). Differences, on purpose: the
official sampler draws labelled and unlabelled examples in equal expected
numbers per batch (`WeightedRandomSampler`); our loader shuffles the split
uniformly, so the labelled share of a batch is the split's.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from common import config as config_lib
from common.core import method as method_lib

STUDENT_TEMP = 0.1   # official DistillLoss student_temp and CE logits / 0.1
SUPCON_TEMP = 0.07   # SupConLoss temperature = base_temperature
INFONCE_TEMP = 1.0   # info_nce_logits default


def _normalize(x: jax.Array) -> jax.Array:
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _wmean(x: jax.Array, w: jax.Array) -> jax.Array:
  """Mean of `x` over rows with weight `w` (0 when no row counts)."""
  w = w.astype(jnp.float32)
  return jnp.sum(x * w) / jnp.maximum(jnp.sum(w), 1.0)


def teacher_temperature(epoch: jax.Array, warmup_temp: jax.Array,
                        temp: jax.Array, warmup_epochs: jax.Array
                        ) -> jax.Array:
  """`np.linspace(warmup_temp, temp, W)[epoch]`, then `temp` (epoch >= W)."""
  e = epoch.astype(jnp.float32)
  frac = e / jnp.maximum(warmup_epochs - 1.0, 1.0)
  return jnp.where(e < warmup_epochs,
                   warmup_temp + (temp - warmup_temp) * frac, temp)


def supervised_ce(logits: jax.Array, labels: jax.Array,
                  labelled: jax.Array) -> jax.Array:
  """CE of `logits / 0.1` `[2b, K]` on the labelled rows (`[2b]`)."""
  logp = jax.nn.log_softmax(logits / STUDENT_TEMP)
  nll = -jnp.take_along_axis(logp, labels[:, None], axis=-1)[:, 0]
  return _wmean(nll, labelled)


def distill_loss(logits: jax.Array, teacher_temp: jax.Array,
                 valid: jax.Array) -> jax.Array:
  """Cross-view self-distillation; `logits` `[2b, K]`, views stacked."""
  l1, l2 = jnp.split(logits, 2)
  t1, t2 = (jax.nn.softmax(jax.lax.stop_gradient(t) / teacher_temp)
            for t in (l1, l2))
  s1, s2 = (jax.nn.log_softmax(s / STUDENT_TEMP) for s in (l1, l2))
  v = jnp.split(valid, 2)[0]
  return 0.5 * (_wmean(-jnp.sum(t1 * s2, -1), v)
                + _wmean(-jnp.sum(t2 * s1, -1), v))


def memax_loss(logits: jax.Array, valid: jax.Array) -> jax.Array:
  """`sum pbar log pbar + log K` of the mean prediction (`[2b, K]`)."""
  probs = jax.nn.softmax(logits / STUDENT_TEMP)
  w = valid.astype(jnp.float32)[:, None]
  pbar = jnp.sum(probs * w, 0) / jnp.maximum(jnp.sum(w), 1.0)
  return jnp.sum(pbar * jnp.log(pbar)) + jnp.log(logits.shape[-1])


def info_nce_loss(proj: jax.Array, valid: jax.Array,
                  temperature: float = INFONCE_TEMP) -> jax.Array:
  """SimCLR InfoNCE; `proj` `[2b, d]`, row `i`'s positive is `i +- b`."""
  n = proj.shape[0]
  z = _normalize(proj)
  sim = z @ z.T / temperature
  eye = jnp.eye(n, dtype=bool)
  other = jnp.roll(jnp.arange(n), n // 2)
  keep = ~eye & valid[None, :]
  lse = jax.nn.logsumexp(jnp.where(keep, sim, -1e9), axis=-1)
  return _wmean(lse - sim[jnp.arange(n), other], valid)


def supcon_loss(proj: jax.Array, labels: jax.Array, labelled: jax.Array,
                temperature: float = SUPCON_TEMP) -> jax.Array:
  """SupCon over the labelled rows; `proj` `[2b, d]`, `labels` `[2b]`.

  Anchors and contrasts are the labelled rows of both views; positives
  share the label (the other view included), self excluded.
  """
  n = proj.shape[0]
  z = _normalize(proj)
  sim = z @ z.T / temperature
  keep = ~jnp.eye(n, dtype=bool) & labelled[None, :]
  log_prob = sim - jax.nn.logsumexp(jnp.where(keep, sim, -1e9), axis=-1,
                                    keepdims=True)
  pos = keep & (labels[:, None] == labels[None, :])
  mean_pos = (jnp.sum(jnp.where(pos, log_prob, 0.0), -1)
              / jnp.maximum(jnp.sum(pos, -1), 1))
  return -_wmean(mean_pos, labelled)


def two_view_forward(ctx: method_lib.StepContext, params, batch, rng):
  """`(outputs, model_state, labels [2b], labelled [2b], valid [2b])`: one
  forward of two augmented views stacked `[view 1; view 2]`."""
  k1, k2 = jax.random.split(rng)
  views = jnp.concatenate([ctx.preprocess(batch, k1),
                           ctx.preprocess(batch, k2)])
  outputs, model_state = ctx.forward(params, views)
  b = batch["label"].shape[0]
  valid = batch.get("mask", jnp.ones((b,), bool))
  labelled = batch["labelled"] & valid
  twice = lambda x: jnp.concatenate([x, x])
  return (outputs, model_state, twice(batch["label"]), twice(labelled),
          twice(valid))


def simgcd_terms(hp, ctx, logits, proj, labels, labelled, valid):
  """The five SimGCD terms (unweighted) and the teacher temperature."""
  epoch = ctx.step // ctx.run.steps_per_epoch
  tau = teacher_temperature(epoch, hp["warmup_teacher_temp"],
                            hp["teacher_temp"],
                            hp["warmup_teacher_temp_epochs"])
  return {
      "ce": supervised_ce(logits, labels, labelled),
      "distill": distill_loss(logits, tau, valid),
      "memax": memax_loss(logits, valid),
      "infonce": info_nce_loss(proj, valid),
      "supcon": supcon_loss(proj, labels, labelled),
  }, tau


def simgcd_total(hp, terms) -> jax.Array:
  """The official weighting of the terms."""
  w = hp["sup_weight"]
  cluster = terms["distill"] + hp["memax_weight"] * terms["memax"]
  return ((1 - w) * cluster + w * terms["ce"]
          + (1 - w) * terms["infonce"] + w * terms["supcon"])


def apply(hp, ctx, params, method_state, batch, rng):
  """SimGCD's step: two views, one forward, the weighted terms."""
  out, model_state, labels, labelled, valid = two_view_forward(
      ctx, params, batch, rng)
  terms, tau = simgcd_terms(hp, ctx, out["logits"], out["projection"],
                            labels, labelled, valid)
  metrics = {**terms, "teacher_temp": tau,
             "labelled_share": _wmean(labelled, valid)}
  return simgcd_total(hp, terms), method_lib.StepAux(
      metrics, model_state, method_state)


DEFAULTS = dict(sup_weight=0.35, memax_weight=2.0, warmup_teacher_temp=0.07,
                teacher_temp=0.04, warmup_teacher_temp_epochs=30)
RULES = {
    "sup_weight": config_lib.between(0.0, 1.0),
    "memax_weight": config_lib.at_least(0.0),
    "warmup_teacher_temp": config_lib.at_least(1e-6),
    "teacher_temp": config_lib.at_least(1e-6),
    "warmup_teacher_temp_epochs": config_lib.at_least(0, integer=True),
}
METHOD = method_lib.Method(name="simgcd", apply=apply, rules=RULES)


@method_lib.register_method("simgcd")
def make(config: dict) -> method_lib.Method:
  del config  # no static choices
  return METHOD

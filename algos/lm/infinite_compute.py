"""Ensembles of LMs and their distillation, for data-constrained pre-training.

Pre-training under infinite compute. Kim, Kotha, Liang, Hashimoto 2025,
arXiv:2509.14786. Official code: marin-community/marin,
`experiments/data_efficiency` (Levanter; ensembles evaluated by averaging
the members' probabilities, `marin.evaluation.log_probs
.default_ensemble_log_probs`; distillation by training on a mix of real
and ensemble-generated tokens, `distill.py`, teacher weight 0.75 / 0.9).

The paper's recipe at a fixed number of unique tokens: epoch, tune the
(much larger) weight decay, scale parameters, ensemble K independently
trained members (the ensemble's prediction is the mean of their softmaxes,
its log: log-mean-softmax), and distil the ensemble into a smaller student.
Pure functions:

* `log_mean_softmax(logits [K, ..., V])`: the ensemble's log-probabilities;
* `member_token_nll`, `ensemble_token_nll`: per-token losses of members /
  of the ensemble;
* `soft_cross_entropy(student_logits, teacher_logprobs)`: `-sum_v p_t log
  p_s` per token; `distill_token_loss`: `(1 - w) CE(real next token) + w
  soft CE(teacher)`, token-level (see "Deviation");
* `clip_per_member(grads, max_norm)`: each member's own global-norm clip,
  so K members trained together are K independent runs.

Methods (the members are the `ensemble` model of `common/models`: stacked
params, one vmapped forward inside the one jitted step):

* `lm_ensemble`: the sum over members of their masked-mean next-token
  losses (each member's gradient is its own loss's), per-member clipping
  (`member_clip_norm`; set `optim.clip_grad_norm=0`); `predict` returns
  the ensemble's `token_nll` for the `lm` evaluator;
* `lm_distill`: a student trained on `distill_token_loss` against a frozen
  teacher (`ctx.extras["teachers"]["ensemble"]`, the `distill` protocol);
  the teacher's module is built from `teacher_model` = `{"name",
  "kwargs"}` of the method config (the teacher run's model section).

Deviation: marin distils at the sequence level (the student trains on
ensemble *samples* mixed with real data); here the student matches the
ensemble's full next-token distribution on the real tokens (cheaper on CPU,
the same teacher signal in expectation over samples).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from algos.lm import next_token
from common import config as config_lib
from common import models
from common.core import method as method_lib
from common.models import ensemble as ensemble_lib

_MODEL_KEYS = ("segment_ids", "positions")


def log_mean_softmax(logits: jax.Array) -> jax.Array:
  """`log(mean_k softmax(logits[k]))`: `[K, ..., V] -> [..., V]` float32."""
  logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  return jax.nn.logsumexp(logp, axis=0) - math.log(logits.shape[0])


def _gather(logp: jax.Array, targets: jax.Array) -> jax.Array:
  return jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]


def member_token_nll(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """`[K, B, T]` next-token NLL of each member (logits `[K, B, T, V]`,
  targets int `[B, T]`)."""
  logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  return -_gather(logp, jnp.broadcast_to(targets, logp.shape[:-1]))


def ensemble_token_nll(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """`[B, T]` NLL of the ensemble (mean of the members' probabilities)."""
  return -_gather(log_mean_softmax(logits), targets)


def soft_cross_entropy(student_logits: jax.Array,
                       teacher_logprobs: jax.Array) -> jax.Array:
  """`-sum_v p_teacher(v) log p_student(v)` per position `[...]`."""
  logq = jax.nn.log_softmax(student_logits.astype(jnp.float32), axis=-1)
  return -jnp.sum(jnp.exp(teacher_logprobs) * logq, axis=-1)


def distill_token_loss(student_logits: jax.Array, teacher_logprobs: jax.Array,
                       targets: jax.Array, weight: jax.Array) -> jax.Array:
  """`(1 - weight) NLL(targets) + weight soft CE(teacher)`, `[B, T]`."""
  logq = jax.nn.log_softmax(student_logits.astype(jnp.float32), axis=-1)
  hard = -_gather(logq, targets)
  soft = -jnp.sum(jnp.exp(teacher_logprobs) * logq, axis=-1)
  return (1.0 - weight) * hard + weight * soft


def clip_per_member(grads: Any, max_norm: jax.Array) -> Any:
  """Each member's gradient (leading axis K of every leaf) clipped to the
  global norm `max_norm` over its own leaves; `max_norm <= 0`: unchanged."""
  leaves = jax.tree.leaves(grads)
  sq = sum(jnp.sum(jnp.square(g.astype(jnp.float32)),
                   axis=tuple(range(1, g.ndim))) for g in leaves)   # [K]
  norm = jnp.sqrt(sq)
  scale = jnp.where(max_norm > 0,
                    jnp.minimum(1.0, max_norm / jnp.maximum(norm, 1e-12)),
                    1.0)
  return jax.tree.map(
      lambda g: g * scale.reshape((-1,) + (1,) * (g.ndim - 1)).astype(
          g.dtype), grads)


def _members(logits: jax.Array) -> jax.Array:
  """`[K, B, T, V]` from an ensemble's logits or a single model's
  `[B, T, V]` (K = 1)."""
  return logits if logits.ndim == 4 else logits[None]


def _forward(ctx, params, batch, *, train, model=None):
  kwargs = {k: batch[k] for k in _MODEL_KEYS if k in batch}
  return ctx.forward(params, train=train, model=model, compute_logits=True,
                     **kwargs)


def _check_keys(name: str, cfg: dict, allowed: tuple[str, ...]) -> None:
  unknown = set(cfg) - set(allowed)
  if unknown:
    raise config_lib.ConfigError(
        f"config.method.{name} has {sorted(unknown)}; it reads "
        f"{list(allowed)}")


@method_lib.register_method("lm_ensemble")
def make_ensemble(method_config: dict[str, Any]) -> method_lib.Method:
  """K LMs trained together (model `ensemble`); key `member_clip_norm`."""
  _check_keys("lm_ensemble", method_config, ("member_clip_norm",))
  clip = float(method_config.get("member_clip_norm", 1.0))

  def apply(hp, ctx, params, method_state, batch, rng):
    del hp, rng
    outputs, model_state = _forward(ctx, params, batch, train=True)
    logits = outputs["logits"]                           # [K, B, T, V]
    mask = batch["loss_mask"]
    per_member = jax.vmap(lambda n: method_lib.masked_mean(n, mask))(
        member_token_nll(logits, batch["targets"]))      # [K]
    ens = method_lib.masked_mean(
        ensemble_token_nll(jax.lax.stop_gradient(logits), batch["targets"]),
        mask)
    metrics = {"member_loss": jnp.mean(per_member), "ensemble_loss": ens}
    return jnp.sum(per_member), method_lib.StepAux(metrics, model_state,
                                                   method_state)

  def value_and_grad(hp, ctx, params, method_state, batch, rng, loss_fn):
    del method_state, batch, rng
    (loss, aux), grads = ctx.value_and_grad(loss_fn, params)
    members = grads[ensemble_lib.MEMBER_AXIS_KEY]
    grads = {**grads, ensemble_lib.MEMBER_AXIS_KEY: clip_per_member(
        members, hp["member_clip_norm"])}
    return (loss, aux), grads

  def predict(hp, ctx, params, method_state, batch):
    del hp, method_state
    outputs, _ = _forward(ctx, params, batch, train=False)
    return {"token_nll": ensemble_token_nll(outputs["logits"],
                                            batch["targets"])}

  return method_lib.Method(
      name="lm_ensemble", hparams=lambda cfg, run: {"member_clip_norm": clip},
      apply=apply, value_and_grad=value_and_grad, predict=predict,
      rules={"member_clip_norm": config_lib.at_least(0.0)})


@method_lib.register_method("lm_distill")
def make_distill(method_config: dict[str, Any]) -> method_lib.Method:
  """Student of a frozen teacher LM (ensemble); keys `weight` (of the
  teacher's soft targets, in [0, 1]) and `teacher_model` ({"name",
  "kwargs"}: the teacher run's model section)."""
  _check_keys("lm_distill", method_config, ("weight", "teacher_model"))
  weight = float(method_config.get("weight", 0.9))
  spec = dict(method_config.get("teacher_model") or {})
  if "name" not in spec:
    raise config_lib.ConfigError(
        "config.method.lm_distill.teacher_model needs 'name' and 'kwargs' "
        "(the teacher run's model section)")
  kwargs = dict(spec.get("kwargs") or {})
  num_classes = int(kwargs.pop("num_classes", 259))
  teacher = models.get_model(spec["name"], num_classes, **kwargs)

  def init(rng, ctx):
    del rng
    teachers = (ctx.extras or {}).get("teachers", {})
    if "ensemble" not in teachers:
      raise config_lib.ConfigError(
          "lm_distill needs a teacher run named 'ensemble' (config.teachers"
          f" of the distill protocol); got {sorted(teachers)}")
    return {"teacher": teachers["ensemble"]["params"]}

  def apply(hp, ctx, params, method_state, batch, rng):
    del rng
    t_out, _ = _forward(ctx, method_state["teacher"], batch, train=False,
                        model=teacher)
    t_logits = jax.lax.stop_gradient(t_out["logits"])
    t_logp = log_mean_softmax(_members(t_logits))
    outputs, model_state = _forward(ctx, params, batch, train=True)
    logits = _members(outputs["logits"])                 # [Ks, B, T, V]
    mask = batch["loss_mask"]
    per_member = jax.vmap(lambda s: method_lib.masked_mean(
        distill_token_loss(s, t_logp, batch["targets"], hp["weight"]),
        mask))(logits)
    metrics = next_token.lm_metrics(
        ensemble_token_nll(jax.lax.stop_gradient(logits), batch["targets"]),
        batch)
    metrics["distill_loss"] = jnp.mean(per_member)
    return jnp.sum(per_member), method_lib.StepAux(metrics, model_state,
                                                   method_state)

  def predict(hp, ctx, params, method_state, batch):
    del hp, method_state
    outputs, _ = _forward(ctx, params, batch, train=False)
    return {"token_nll": ensemble_token_nll(_members(outputs["logits"]),
                                            batch["targets"])}

  return method_lib.Method(
      name="lm_distill", hparams=lambda cfg, run: {"weight": weight},
      init=init, apply=apply, predict=predict,
      rules={"weight": config_lib.between(0.0, 1.0)})

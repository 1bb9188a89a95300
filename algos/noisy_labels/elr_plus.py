"""ELR+: ELR with two networks, mixup and weight averaging.

Liu, Niles-Weed, Razavian, Fernandez-Granda. Early-Learning Regularization
Prevents Memorization of Noisy Labels. NeurIPS 2020. arXiv:2007.00151.
Official code (PyTorch): https://github.com/shengliu66/ELR, folder ELR_plus
(model/loss.py `elr_plus_loss`, trainer/trainer.py `_train_epoch`,
`_mixup_data`, `update_ema_variables`).

Two networks k = 1, 2 of one architecture (`model.name = "two_nets"`,
algos/noisy_labels/two_nets.py), each with a weight average (EMA) w~_k. On
a batch (x, y~, indices i), for each network k with the OTHER network o:

    lam ~ Beta(a, a), lam <- max(lam, 1 - lam); a permutation pi
    x' = lam x + (1 - lam) x[pi];   y' = lam onehot(y~) + (1 - lam) ...[pi]
    t^k_i <- beta t^k_i + (1 - beta) softmax(f(x; w~_o))       (EMA of o)
    q = lam t^k_i + (1 - lam) t^k_{pi(i)}
    loss_k = mean(-<y', log softmax(f(x'; w_k))>)
             + ramp(step, coef_step) * lambda * mean(log(1 - <q, p>))

with p = clip(softmax(f(x'; w_k)), 1e-4, 1 - 1e-4). The two losses are
summed (disjoint parameters: each network gets its own gradient). After the
optimizer step, w~_k <- d w~_k + (1 - d) w_k with d = ramp(t + 1, ema_step)
* ema_alpha after t steps (`ema_ramp = 1`, the official `ema_update`), or
min(1 - 1 / (t + 1), ema_alpha) (`ema_ramp = 0`). ramp(s, L) =
exp(-5 (1 - min(s, L) / L)^2), 1 for L = 0. `label_times_target` is the
official CIFAR-100 branch (y' <- y' * q, renormalised). Prediction: the mean
logits of the two weight-averaged networks (`predict_with = "ema"`), or of
the two trained ones (`"raw"`, what the official `_test_epoch` evaluates on
one GPU).

Differences from the official code, on purpose:
* Both networks train in one step on the same batch, each with its own
  mixup draw (official: two data loaders, two optimizers, network 1's epoch
  then network 2's). Each network's targets come from the other's EMA as
  it is at the start of the step (official single GPU: network 2 sees net
  1's EMA after net 1's whole epoch; multi-GPU: a copy from the previous
  epoch).
* The EMAs start equal to the networks' initial weights (official: separate
  random inits; the first EMA step has d ~ 0.007, so it is forgotten at
  once). Their BatchNorm statistics live in `method_state` and update in
  their train-mode forwards, as the official EMA models' buffers do.
* Padded rows (`mask` false) write no targets, enter no mean, and are never
  a mixup partner (a row whose drawn partner is padding is not mixed).
* No warm-up epochs (every official config has `warmup: 0`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from algos.noisy_labels import elr
from algos.noisy_labels import two_nets
from algos.tta import cotta
from common import config as config_lib
from common.core import method as method_lib

PREDICT_WITH = ("ema", "raw")
STATIC_KEYS = ("label_times_target", "predict_with")
# The official CIFAR-10 symmetric settings (ELR_plus/config_cifar10.json).
DEFAULTS = dict(lam=3.0, beta=0.7, mixup_alpha=1.0, coef_step=0.0,
                ema_alpha=0.997, ema_step=40000.0, ema_ramp=1.0)


def sigmoid_rampup(current: jax.Array, length: jax.Array) -> jax.Array:
  """exp(-5 (1 - clip(current, 0, length) / length)^2); 1 if length = 0."""
  safe = jnp.maximum(length, 1e-12)
  phase = 1.0 - jnp.clip(current, 0.0, safe) / safe
  return jnp.where(length > 0, jnp.exp(-5.0 * phase * phase), 1.0)


def ema_decay(hp, steps_taken: jax.Array) -> jax.Array:
  """The official EMA decay after `steps_taken` optimizer steps."""
  t = jnp.asarray(steps_taken, jnp.float32)
  ramped = sigmoid_rampup(t + 1.0, hp["ema_step"]) * hp["ema_alpha"]
  true_average = jnp.minimum(1.0 - 1.0 / (t + 1.0), hp["ema_alpha"])
  return jnp.where(hp["ema_ramp"] > 0, ramped, true_average)


def mixup_draw(rng: jax.Array, alpha: jax.Array, mask: jax.Array
               ) -> tuple[jax.Array, jax.Array]:
  """`(lam, perm [b])`: lam = max(l, 1 - l), l ~ Beta(alpha, alpha); lam =
  1 (no mixing) for alpha = 0. Padded partners are replaced by the row."""
  r_lam, r_perm = jax.random.split(rng)
  a = jnp.maximum(alpha, 1e-6)
  lam = jax.random.beta(r_lam, a, a)
  lam = jnp.where(alpha > 0, jnp.maximum(lam, 1.0 - lam), 1.0)
  rows = jnp.arange(mask.shape[0])
  perm = jax.random.permutation(r_perm, mask.shape[0])
  return lam, jnp.where(mask[perm], perm, rows)


def mix(tree: Any, lam: jax.Array, perm: jax.Array) -> Any:
  """`lam * x + (1 - lam) * x[perm]` on every leaf (batch-major)."""
  return jax.tree.map(
      lambda x: (lam * x + (1.0 - lam) * x[perm]).astype(x.dtype), tree)


def mixed_targets(targets: jax.Array, index: jax.Array,
                  ema_logits: jax.Array, mask: jax.Array, beta: jax.Array,
                  lam: jax.Array, perm: jax.Array
                  ) -> tuple[jax.Array, jax.Array]:
  """The official `update_hist`: `(targets [N, C], q [b, C])`.

  The batch's rows move toward softmax(`ema_logits`) (the other network's
  EMA on the unmixed inputs; no gradient), and q mixes them like the inputs.
  """
  probs = jax.nn.softmax(ema_logits.astype(jnp.float32), axis=-1)
  targets = elr.update_targets(targets, index, probs, mask, beta)
  rows = targets[index]
  return targets, lam * rows + (1.0 - lam) * rows[perm]


def elr_plus_loss(logits: jax.Array, soft_labels: jax.Array, q: jax.Array,
                  coef: jax.Array, lam_elr: jax.Array, mask: jax.Array,
                  label_times_target: bool = False
                  ) -> tuple[jax.Array, jax.Array, jax.Array]:
  """`(loss, ce, reg)` of the official `elr_plus_loss.forward`.

  Args:
    logits: `[b, C]` of the mixed inputs.
    soft_labels: `[b, C]` mixed one-hot noisy labels.
    q: `[b, C]` mixed targets (no gradient).
    coef: the ramp of the regulariser at this iteration.
    lam_elr: lambda.
    mask: `[b]` bool, rows entering the means.
    label_times_target: the official CIFAR-100 branch.
  """
  logits = logits.astype(jnp.float32)
  q = jax.lax.stop_gradient(q)
  if label_times_target:
    soft_labels = soft_labels * q
    soft_labels = soft_labels / jnp.sum(soft_labels, axis=-1, keepdims=True)
  ce = method_lib.masked_mean(
      -jnp.sum(soft_labels * jax.nn.log_softmax(logits), axis=-1), mask)
  reg = method_lib.masked_mean(
      elr.elr_regulariser(q, elr.clipped_probs(logits)), mask)
  return ce + coef * lam_elr * reg, ce, reg


def _check(config: dict, model) -> None:
  if two_nets.num_networks(model) != 2:
    raise ValueError("elr_plus trains two networks: set model.name="
                     "'two_nets' (model.kwargs.base = the zoo classifier)")
  if config.get("predict_with", "ema") not in PREDICT_WITH:
    raise ValueError(f"elr_plus: predict_with={config['predict_with']!r}; "
                     f"allowed: {PREDICT_WITH}")


def make_method(config: dict) -> method_lib.Method:
  label_times_target = bool(config.get("label_times_target", False))
  predict_with = config.get("predict_with", "ema")

  def init(rng, ctx: method_lib.InitContext):
    del rng
    _check(config, ctx.model)
    table = elr.init(None, ctx)["targets"]
    # targets[k]: network k's ensemble, built from the other's EMA.
    return {"targets": {name: table for name in two_nets.NAMES},
            "ema": ctx.params, "ema_state": ctx.model_state}

  def apply(hp, ctx, params, method_state, batch, rng):
    nets = two_nets.members(ctx.model, params, ctx.model_state)
    emas = two_nets.members(ctx.model, method_state["ema"],
                            method_state["ema_state"])
    labels, index = batch["label"], batch["index"]
    mask = batch.get("mask", jnp.ones(labels.shape, bool))
    onehot = jax.nn.one_hot(labels, ctx.run.num_classes, dtype=jnp.float32)
    coef = sigmoid_rampup(ctx.step.astype(jnp.float32) + 1.0,
                          hp["coef_step"])
    total, metrics = 0.0, {"coef": coef}
    targets, model_states, ema_states = {}, [None, None], [None, None]
    for k, name in enumerate(two_nets.NAMES):
      net, p, s = nets[k]
      other = 1 - k
      _, e, es = emas[other]
      lam, perm = mixup_draw(jax.random.fold_in(rng, k), hp["mixup_alpha"],
                             mask)
      out, model_states[k] = two_nets.member_forward(
          ctx, net, p, s, mix(ctx.inputs, lam, perm), train=True,
          rng=jax.random.fold_in(ctx.rng_model, k))
      ema_out, ema_states[other] = two_nets.member_forward(
          ctx, net, e, es, ctx.inputs, train=True,
          rng=jax.random.fold_in(ctx.rng_model, 2 + k))
      targets[name], q = mixed_targets(
          method_state["targets"][name], index,
          jax.lax.stop_gradient(ema_out["logits"]), mask, hp["beta"], lam,
          perm)
      value, ce, reg = elr_plus_loss(out["logits"], mix(onehot, lam, perm),
                                     q, coef, hp["lam"], mask,
                                     label_times_target)
      total = total + value
      metrics.update({f"ce{k + 1}": ce, f"elr{k + 1}": reg,
                      f"mixup_lam{k + 1}": lam})
    state = {**method_state, "targets": targets,
             "ema_state": jax.lax.stop_gradient(
                 two_nets.merge_states(ema_states))}
    return total, method_lib.StepAux(
        metrics, two_nets.merge_states(model_states), state)

  def after_update(hp, ctx, params, method_state, rng):
    del rng
    decay = ema_decay(hp, ctx.step + 1)
    ema = cotta.ema_update(method_state["ema"], params, decay)
    return params, {**method_state, "ema": ema}

  def predict(hp, ctx, params, method_state, batch):
    del hp, batch
    if predict_with == "ema":
      params, model_state = method_state["ema"], method_state["ema_state"]
    else:
      model_state = ctx.model_state
    return ctx.forward(params, train=False, model_state=model_state)[0]

  return method_lib.Method(
      name="elr_plus", init=init, apply=apply, after_update=after_update,
      predict=predict, rules=RULES,
      hparams=lambda cfg, run: method_lib.default_hparams(
          {k: v for k, v in {**DEFAULTS, **cfg}.items()
           if k not in STATIC_KEYS}, run))


RULES = {"lam": config_lib.at_least(0.0),
         "beta": config_lib.between(0.0, 1.0),
         "mixup_alpha": config_lib.at_least(0.0),
         "coef_step": config_lib.at_least(0.0),
         "ema_alpha": config_lib.between(0.0, 1.0),
         "ema_step": config_lib.at_least(0.0),
         "ema_ramp": config_lib.between(0.0, 1.0)}


@method_lib.register_method("elr_plus")
def make(config: dict) -> method_lib.Method:
  return make_method(config)

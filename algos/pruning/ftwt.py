"""FTWT: per-input channel gates learnt from self-supervised mask targets.

Paper: "Fire Together Wire Together: A Dynamic Pruning Approach with
Self-Supervised Mask Prediction", Sara Elkerdawy, Mostafa Elhoushi, Hong
Zhang, Nilanjan Ray, CVPR 2022, arXiv:2110.08232. Official code:
https://github.com/selkerdawy/FTWT (PyTorch; read at commit fc9e27f:
`utils/layers.py` `get_gt_mask_ratio`, `get_gt_mask_pratio`,
`apply_predictor`; `utils/utils.py` `compute_mask_loss_per_input`;
`cifar.py` for the cooldown and optimiser groups).

The model (`common/models/gated_cnn.py`) returns per layer the mask
predictor's logits `[b, C]` (from the layer's input) and the layer's
heat-map criterion `max_{h,w} |out|` `[b, C]`. This module turns the
criterion into binary targets and trains the predictors on them with a
binary cross-entropy that is decoupled from the task loss:

* `mass_targets(stats, mu)`: normalise each input's criterion to a
  distribution over channels, sort it in decreasing order and keep the
  channels whose cumulative mass is at most `mu` (+1e-5): the official
  `get_gt_mask_ratio`. So the number of kept channels `k` varies per input.
  `mu >= 1` keeps every channel with non-zero mass (the official special
  case). `inclusive=True` keeps, instead, the smallest top set whose mass
  reaches `mu` (one channel more than the official rule when the boundary
  is not hit exactly; never empty).
* `uniform_targets(stats, prune_ratio)`: the official `gt-type uniform`:
  drop the `int(prune_ratio * C)` weakest channels and the dead ones.
* `mask_loss(logits, targets, valid)`: per layer, BCE-with-logits summed
  over channels and averaged over the batch; averaged over layers (the
  official `compute_mask_loss_per_input`, reduction 'none', mean(0).sum()).

Training (method `ftwt`): `cross_entropy + w(t) * mask_weight * mask_loss`
with `w(t) = 1[t < cooldown * total_steps]` (official `--cooldown 0.5`:
the predictors freeze for the second half). With decoupled gradients the
predictor gets only the mask loss' gradient, so `mask_weight` is the
official predictor/backbone learning-rate ratio (`mlr / lr` = 0.1 / 0.01 =
10) under one SGD optimiser (deviation: the predictor's rate follows the
backbone's schedule and weight decay, the official one is constant and
undecayed).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from algos.baselines import cross_entropy
from common import config as config_lib
from common.core import method as method_lib

DELTA = 1e-5   # the official tolerance
DEFAULTS = dict(mu=0.9, mask_weight=10.0, cooldown=0.5, inclusive=False)


def normalised_mass(stats: jax.Array) -> jax.Array:
  """`[b, C]` criterion -> per-row distribution (uniform for a zero row)."""
  stats = stats.astype(jnp.float32)
  total = jnp.sum(stats, axis=-1, keepdims=True)
  return jnp.where(total > 0, stats / jnp.where(total > 0, total, 1.0),
                   1.0 / stats.shape[-1])


def mass_targets(stats: jax.Array, mu: jax.Array, inclusive: bool = False
                 ) -> jax.Array:
  """Per-input keep targets from the heat-map mass (official rule).

  Args:
    stats: `[b, C]` non-negative criterion (`gated_cnn.channel_criterion`).
    mu: scalar mass threshold (traced).
    inclusive: static; see the module docstring.

  Returns:
    `[b, C]` float32 0/1 targets (1 = keep). An all-zero row keeps every
    channel (the official 0/0 comparisons are all False).
  """
  p = normalised_mass(stats)
  order = jnp.argsort(-p, axis=-1)
  sorted_p = jnp.take_along_axis(p, order, axis=-1)
  cum = jnp.cumsum(sorted_p, axis=-1)
  if inclusive:
    keep_sorted = (cum - sorted_p) < mu - DELTA
  else:
    keep_sorted = (cum - mu) <= DELTA
  rows = jnp.arange(p.shape[0])[:, None]
  keep = jnp.zeros(p.shape, bool).at[rows, order].set(keep_sorted)
  keep = jnp.where(mu >= 1.0, p > DELTA, keep)
  dead = jnp.sum(stats, axis=-1, keepdims=True) <= 0
  return jnp.where(dead, True, keep).astype(jnp.float32)


def uniform_targets(stats: jax.Array, prune_ratio: float) -> jax.Array:
  """Official `get_gt_mask_pratio`: drop the `int(prune_ratio * C)`
  weakest channels of each input and those with criterion <= 1e-5.

  Args:
    stats: `[b, C]` criterion.
    prune_ratio: static fraction; `< 0` keeps everything.

  Returns:
    `[b, C]` float32 0/1 targets.
  """
  if prune_ratio < 0:
    return jnp.ones(stats.shape, jnp.float32)
  n = int(prune_ratio * stats.shape[-1])
  keep = stats > DELTA
  if n:
    order = jnp.argsort(stats, axis=-1)[:, :n]
    rows = jnp.arange(stats.shape[0])[:, None]
    keep = keep.at[rows, order].set(False)
  return keep.astype(jnp.float32)


def bce_with_logits(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """Elementwise `-(t log s(z) + (1 - t) log(1 - s(z)))`, stable."""
  logits = logits.astype(jnp.float32)
  return (jnp.maximum(logits, 0) - logits * targets
          + jnp.log1p(jnp.exp(-jnp.abs(logits))))


def mask_loss(logits: Sequence[jax.Array], targets: Sequence[jax.Array],
              valid: jax.Array | None = None) -> jax.Array:
  """Official mask loss: mean over layers of (sum over channels of the
  batch-mean BCE).

  Args:
    logits, targets: per layer `[b, C_l]`.
    valid: `[b]` bool rows to average over (None: all).

  Returns:
    Scalar.
  """
  per_layer = []
  for z, t in zip(logits, targets, strict=True):
    per_row = jnp.sum(bce_with_logits(z, t), axis=-1)
    per_layer.append(per_row if valid is None
                     else method_lib.masked_mean(per_row, valid))
  if valid is None:
    per_layer = [jnp.mean(v) for v in per_layer]
  return sum(per_layer) / len(per_layer)


def mask_accuracy(logits: Sequence[jax.Array], targets: Sequence[jax.Array]
                  ) -> jax.Array:
  """`[b]` mean over layers of the fraction of channels whose predicted
  gate (`logit > 0`) equals the target."""
  accs = [jnp.mean(((z > 0) == (t > 0.5)).astype(jnp.float32), axis=-1)
          for z, t in zip(logits, targets, strict=True)]
  return sum(accs) / len(accs)


def layer_targets(outputs, hp, inclusive: bool) -> list[jax.Array]:
  """The mass targets of every gated layer of a `gated_cnn` output."""
  return [mass_targets(s, hp["mu"], inclusive) for s in outputs["gate_stats"]]


def make_apply(inclusive: bool):
  """The train step's forward and loss (static `inclusive`)."""

  def apply(hp, ctx, params, method_state, batch, rng):
    del rng
    outputs, model_state = ctx.forward(params)
    ce, metrics, method_state = cross_entropy.loss(
        {"label_smoothing": jnp.zeros(())}, method_state, outputs, batch,
        params, None)
    targets = layer_targets(outputs, hp, inclusive)
    valid = batch["mask"]
    ml = mask_loss(outputs["gate_logits"], targets, valid)
    active = (ctx.step < hp["cooldown"] * ctx.run.total_steps)
    weight = hp["mask_weight"] * active.astype(jnp.float32)
    loss = ce + weight * ml
    metrics = dict(metrics, mask_loss=ml, mask_weight=weight,
                   mask_acc=method_lib.masked_mean(
                       mask_accuracy(outputs["gate_logits"], targets), valid),
                   flops_ratio=method_lib.masked_mean(
                       outputs["flops_ratio"], valid),
                   target_keep=jnp.mean(jnp.stack(
                       [jnp.mean(t) for t in targets])))
    return loss, method_lib.StepAux(metrics, model_state, method_state)

  return apply


def make_predict(inclusive: bool):
  """Eval outputs plus `gate_accuracy [b]`, `target_keep [b]`, `gate_keep
  [b]`; the per-layer tuples concatenated over channels."""

  def predict(hp, ctx, params, method_state, batch):
    del method_state, batch
    outputs = dict(ctx.forward(params, train=False)[0])
    targets = layer_targets(outputs, hp, inclusive)
    outputs["gate_accuracy"] = mask_accuracy(outputs["gate_logits"], targets)
    outputs["target_keep"] = sum(jnp.mean(t, axis=-1) for t in targets) / len(
        targets)
    outputs["gate_keep"] = sum(jnp.mean(g, axis=-1) for g in outputs["gates"]
                               ) / len(outputs["gates"])
    # per-layer tuples -> `[b, sum_l C_l]` arrays (eval outputs are arrays)
    for k in ("gate_logits", "gate_stats", "gates"):
      outputs[k] = jnp.concatenate(outputs[k], axis=-1)
    return outputs

  return predict


def hparams(method_config, run):
  del run
  return {k: float(method_config.get(k, DEFAULTS[k]))
          for k in ("mu", "mask_weight", "cooldown")}


@method_lib.register_method("ftwt")
def make(config: dict) -> method_lib.Method:
  """FTWT: cross-entropy + the decoupled mask-predictor loss."""
  unknown = set(config) - set(DEFAULTS)
  if unknown:
    raise ValueError(f"method.ftwt: unknown keys {sorted(unknown)}; allowed "
                     f"{sorted(DEFAULTS)}")
  inclusive = bool(config.get("inclusive", DEFAULTS["inclusive"]))
  return method_lib.Method(
      name="ftwt", init=method_lib.stateless_init,
      apply=make_apply(inclusive), predict=make_predict(inclusive),
      hparams=hparams,
      rules={"mu": config_lib.between(0.0, 1.0),
             "mask_weight": config_lib.at_least(0.0),
             "cooldown": config_lib.between(0.0, 1.0)})

"""The baselines of every TTA table: source, BN-adapt and Tent (Method v2).

* `source`: the trained model as is (BatchNorm with its running averages).
* `bn_adapt`: the same weights, BatchNorm with the test batch's statistics
  (Schneider et al., 2020; `cifar/norm.py` of qinenergy/cotta).
* `tent`: Tent: Fully Test-Time Adaptation by Entropy Minimization (Wang
  et al., ICLR 2021, arXiv:2006.10726), official code DequanWang/tent
  (`tent.py`): test-batch BatchNorm statistics, one gradient step per batch
  on the mean prediction entropy w.r.t. the BatchNorm scales and biases
  only (`trainable="norm"`). The reported prediction is the output of the
  forward pass the update is computed from (before the update, as
  `forward_and_adapt` returns `outputs`).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from algos.tta import losses
from algos.tta import tta_lib
from common.core import method as method_lib


def _no_adapt(batch_stats: bool):
  """`apply` of a method that only predicts (loss 0, no update)."""
  def apply(hp, ctx, params, method_state, batch, rng):
    del hp, batch, rng
    logits = (tta_lib.forward(ctx, params) if batch_stats
              else tta_lib.forward_running(ctx, params))
    return jnp.zeros((), jnp.float32), tta_lib.step_aux(
        ctx, method_state, logits)
  return apply


def _predict_running(hp, ctx, params, method_state, batch):
  del hp, method_state, batch
  return {"logits": tta_lib.forward_running(ctx, params)}


SOURCE = method_lib.Method(
    name="source", apply=_no_adapt(False), predict=_predict_running,
    value_and_grad=tta_lib.no_gradient, trainable="none",
    hparams=lambda cfg, run: {})

BN_ADAPT = method_lib.Method(
    name="bn_adapt", apply=_no_adapt(True),
    predict=tta_lib.predict_batch_stats,
    value_and_grad=tta_lib.no_gradient, trainable="none",
    hparams=lambda cfg, run: {})


def tent_apply(hp, ctx: method_lib.StepContext, params, method_state, batch,
               rng):
  """Tent's loss: the batch's mean prediction entropy.

  Args:
    hp: unused (Tent's only number is the optimizer's learning rate).
    ctx: the step context (`ctx.inputs`: the normalised batch
      `[b, h, w, c]`).
    params: model parameters (gradients reach only the BatchNorm affine
      leaves: `trainable="norm"`).
    method_state: `{}`.
    batch: unused.
    rng: unused.

  Returns:
    `(loss, StepAux)` with the pre-update logits `[b, C]` as outputs.
  """
  del hp, batch, rng
  logits = tta_lib.forward(ctx, params)
  loss = jnp.mean(losses.softmax_entropy(logits))
  b = tta_lib.batch_count(logits)
  return loss, tta_lib.step_aux(
      ctx, method_state, logits,
      {"backward_samples": b, "backward_rows": b})


TENT = method_lib.Method(
    name="tent", apply=tent_apply, predict=tta_lib.predict_batch_stats,
    trainable="norm", hparams=lambda cfg, run: {})


@method_lib.register_method("source")
def make_source(config: dict[str, Any]) -> method_lib.Method:
  del config
  return SOURCE


@method_lib.register_method("bn_adapt")
def make_bn_adapt(config: dict[str, Any]) -> method_lib.Method:
  del config
  return BN_ADAPT


@method_lib.register_method("tent")
def make_tent(config: dict[str, Any]) -> method_lib.Method:
  del config
  return TENT


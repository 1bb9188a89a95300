"""The baselines of every TTA table: source, BN-adapt and Tent.

* `source`: the trained model as is (BatchNorm with its running averages).
* `bn_adapt`: the same weights, BatchNorm with the test batch's statistics
  (Schneider et al., 2020; `cifar/norm.py` of qinenergy/cotta).
* `tent`: Tent: Fully Test-Time Adaptation by Entropy Minimization (Wang
  et al., ICLR 2021, arXiv:2006.10726), official code DequanWang/tent
  (`tent.py`): test-batch BatchNorm statistics, one gradient step per batch
  on the mean prediction entropy w.r.t. the BatchNorm scales and biases
  only. The reported prediction is the output of the forward pass the
  update is computed from (before the update, as `forward_and_adapt`
  returns `outputs`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from algos.tta import losses
from common import adapt


def no_state_init(rng, params, ctx):
  del rng, params, ctx
  return {}


def no_hparams(config: dict[str, Any], num_classes: int) -> dict[str, float]:
  del num_classes
  return {k: float(v) for k, v in config.items()
          if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _predictor(batch_stats: bool):
  def predict(hp, method_state, params, images, ctx):
    del hp, method_state
    return ctx.forward(params, images, batch_stats=batch_stats)
  return predict


def _no_adapt(batch_stats: bool):
  def adapt_fn(hp, method_state, params, images, rng, ctx):
    del hp, rng
    logits = ctx.forward(params, images, batch_stats=batch_stats)
    return adapt.AdaptOutput(logits, None, jnp.zeros((), bool), method_state,
                             {})
  return adapt_fn


@adapt.register_tta("source")
def make_source(config: dict[str, Any]) -> adapt.TTAMethod:
  del config
  return adapt.TTAMethod(
      name="source", trains="none", init=no_state_init,
      adapt=_no_adapt(False), predict=_predictor(False), hparams=no_hparams)


@adapt.register_tta("bn_adapt")
def make_bn_adapt(config: dict[str, Any]) -> adapt.TTAMethod:
  del config
  return adapt.TTAMethod(
      name="bn_adapt", trains="none", init=no_state_init,
      adapt=_no_adapt(True), predict=_predictor(True), hparams=no_hparams)


def tent_adapt(hp, method_state, params, images, rng, ctx):
  """One Tent step: mean entropy of the batch, gradients on BN affine.

  Args:
    hp: unused (Tent's only number is the optimizer's learning rate).
    method_state: `{}`.
    params: model parameters.
    images: float32 `[b, h, w, c]` in [0, 1].
    rng: dropout key.
    ctx: the harness's `AdaptContext`.

  Returns:
    `AdaptOutput` with the pre-update logits `[b, C]`.
  """
  del hp

  def loss_fn(p):
    logits = ctx.forward(p, images, rng)
    return jnp.mean(losses.softmax_entropy(logits)), logits

  (loss, logits), grads = ctx.value_and_grad(loss_fn, params)
  b = jnp.asarray(images.shape[0], jnp.float32)
  return adapt.AdaptOutput(
      jax.lax.stop_gradient(logits), grads, jnp.ones((), bool), method_state,
      {"loss": loss, "backward_samples": b, "backward_rows": b})


@adapt.register_tta("tent")
def make_tent(config: dict[str, Any]) -> adapt.TTAMethod:
  del config
  return adapt.TTAMethod(
      name="tent", trains="norm", init=no_state_init, adapt=tent_adapt,
      predict=_predictor(True), hparams=no_hparams)

"""Post-hoc calibrators as `Method`s over a frozen classifier.

A post-hoc calibrator trains a few parameters on top of a finished
classifier. In the harness that is the teacher/student case of WORKSPACE.md
turned around: the `finetune` protocol trains (or reuses) the classifier and
starts this run from its parameters; the calibrator's `init` moves them into
`method_state["classifier"]` (frozen: nothing differentiates method state)
and returns the calibrator's own parameters as the trained `params`, so the
shared train step's optimizer updates only the calibrator. The classifier's
BatchNorm statistics stay the run's `model_state`, used in eval mode only.

Every calibrator's `predict` returns the calibrated `logits`, so the
harness's evaluators score calibrated predictions.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from common.core import method as method_lib

PyTree = Any


def init_frozen(ctx: method_lib.InitContext,
                calibrator_params: PyTree) -> method_lib.InitOutput:
  """Freezes `ctx.params` (the classifier) in the method state and trains
  `calibrator_params` instead."""
  return method_lib.InitOutput(
      method_state={"classifier": ctx.params}, params=calibrator_params)


def classifier_logits(ctx: method_lib.StepContext, method_state: PyTree,
                      inputs: Any = None) -> jax.Array:
  """`[b, C]` float32 eval-mode logits of the frozen classifier."""
  outputs, _ = ctx.forward(method_state["classifier"], inputs, train=False)
  return jax.lax.stop_gradient(outputs["logits"].astype(jnp.float32))


def torch_linear_init(rng: jax.Array, fan_in: int, fan_out: int
                      ) -> dict[str, jax.Array]:
  """`torch.nn.Linear`'s default init: kernel `[fan_in, fan_out]` and bias
  `[fan_out]` uniform in `+-1/sqrt(fan_in)`."""
  k_w, k_b = jax.random.split(rng)
  bound = 1.0 / jnp.sqrt(float(fan_in))
  return {
      "kernel": jax.random.uniform(k_w, (fan_in, fan_out), jnp.float32,
                                   -bound, bound),
      "bias": jax.random.uniform(k_b, (fan_out,), jnp.float32, -bound, bound)}


def nll(logits: jax.Array, labels: jax.Array, mask: jax.Array) -> jax.Array:
  """Masked mean negative log-likelihood of `[b, C]` logits."""
  logp = jax.nn.log_softmax(logits)
  per_example = -jnp.take_along_axis(logp, labels[:, None], axis=-1)[:, 0]
  return method_lib.masked_mean(per_example, mask)


def make_posthoc(name: str, init_params, calibrate, rules=None
                 ) -> method_lib.Method:
  """A calibrator trained by NLL on the frozen classifier's logits.

  Args:
    name: the method's name.
    init_params: `(rng, num_classes) -> params`.
    calibrate: `(params, logits [b, C]) -> calibrated logits [b, C]`.
    rules: the method config's declared ranges.
  """

  def init(rng, ctx):
    return init_frozen(ctx, init_params(rng, ctx.run.num_classes))

  def apply(hp, ctx, params, method_state, batch, rng):
    del hp, rng
    logits = calibrate(params, classifier_logits(ctx, method_state))
    loss = nll(logits, batch["label"], batch["mask"])
    return loss, method_lib.StepAux({"nll": loss}, ctx.model_state,
                                    method_state)

  def predict(hp, ctx, params, method_state, batch):
    del hp, batch
    return {"logits": calibrate(params, classifier_logits(ctx, method_state))}

  return method_lib.Method(name=name, init=init, apply=apply,
                           predict=predict, hparams=lambda c, r: {},
                           rules=rules)

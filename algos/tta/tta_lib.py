"""What the test-time adaptation methods of `algos/tta` share (Method v2).

TTA methods adapt a trained classifier on unlabeled test batches; the TTA
protocol (`common/protocols/tta.py`) feeds each stream batch to the one
train step, so every update goes through `common/core/train_step.py`. The
conventions the methods follow:

* BatchNorm uses the statistics of the test batch and its running averages
  are never updated (`track_running_stats=False` in the official
  `configure_model`s): `forward` runs the model in train mode and throws
  the new statistics away, and every `StepAux` returns the unchanged
  `ctx.model_state`. Under `jit` with the batch sharded over the
  `("data",)` mesh the batch mean/variance are over the GLOBAL batch.
* The step returns the batch's reported logits as `outputs["logits"]`
  (the prediction the official code returns for that batch).
* `backward_samples` (samples whose loss is back-propagated, the papers'
  count) and `backward_rows` (rows that went through a backward pass, the
  compute) are step metrics the protocol sums over a stream.
* `InitContext.extras["clean_batches"]` holds clean in-distribution source
  batches `{key: [n_batches, b, ...]}` and `extras["preprocess"]` the data
  config's preprocessing (EATA's Fisher, CoTTA's gate).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from common.core import method as method_lib

PyTree = Any


def forward(ctx: method_lib.StepContext, params: PyTree,
            inputs: Any = None, rng: jax.Array | None = None) -> jax.Array:
  """Logits `[b, C]` (float32) with the test batch's BatchNorm statistics;
  the running averages are not updated."""
  outputs, _ = ctx.forward(params, inputs, train=True, rng=rng)
  return outputs["logits"].astype(jnp.float32)


def forward_running(ctx: method_lib.StepContext, params: PyTree,
                    inputs: Any = None) -> jax.Array:
  """Logits `[b, C]` with the source model's BatchNorm running averages."""
  outputs, _ = ctx.forward(params, inputs, train=False)
  return outputs["logits"].astype(jnp.float32)


def predict_batch_stats(hp, ctx: method_lib.StepContext, params: PyTree,
                        method_state: PyTree, batch) -> dict[str, jax.Array]:
  """`Method.predict` of the methods that adapt BatchNorm statistics."""
  del hp, method_state, batch
  return {"logits": forward(ctx, params)}


def init_forward(ctx: method_lib.InitContext, params: PyTree,
                 inputs: Any) -> jax.Array:
  """`forward` at init (no StepContext yet): test-batch statistics."""
  variables = {"params": params, **ctx.model_state}
  outputs, _ = ctx.model.apply(variables, inputs, train=True,
                               mutable=list(ctx.model_state))
  return outputs["logits"].astype(jnp.float32)


def clean_inputs(ctx: method_lib.InitContext) -> Any:
  """Model inputs `[n_batches, b, ...]` of the clean source batches the
  protocol hands to `init`, or None when there are none."""
  extras = ctx.extras or {}
  batches = extras.get("clean_batches")
  if batches is None:
    return None
  preprocess = extras["preprocess"]
  return jax.lax.map(lambda b: preprocess(b, None), batches)


def step_aux(ctx: method_lib.StepContext, method_state: PyTree,
             logits: jax.Array, metrics: dict[str, jax.Array] | None = None,
             apply_update: jax.Array | None = None) -> method_lib.StepAux:
  """The StepAux of a TTA step: unchanged BatchNorm statistics, the
  reported logits as the step's per-example output."""
  return method_lib.StepAux(
      metrics=metrics or {}, model_state=ctx.model_state,
      method_state=method_state,
      outputs={"logits": jax.lax.stop_gradient(logits)},
      apply_update=apply_update)


def no_gradient(hp, ctx: method_lib.StepContext, params: PyTree,
                method_state: PyTree, batch, rng,
                loss_fn: Callable) -> tuple[Any, PyTree]:
  """`value_and_grad` of a method that never trains: the forward only."""
  del hp, ctx, method_state, batch, rng
  return loss_fn(params), jax.tree.map(jnp.zeros_like, params)


def batch_count(x: jax.Array) -> jax.Array:
  """The batch size `b` of `x` `[b, ...]` as a float32 scalar."""
  return jnp.asarray(x.shape[0], jnp.float32)


"""THE train step (and its eval step) that every method runs through.

`make_train_step(parts, mesh, state_sharding)` returns
`step(state, batch, hparams) -> (state, metrics, outputs)`:

* jitted once per structure (model, method, optimizer, preprocessing,
  source); the state is donated;
* data parallel: `batch` is a global array sharded over the `("data",)`
  mesh and the state is replicated, so gradients, BatchNorm statistics and
  method updates are over the *global* batch (the same numbers on 1 or N
  devices, up to summation order);
* modality-agnostic: the batch is a dict; `parts.preprocess(batch, rng)`
  (chosen by the data config: augment and normalise images, nothing for
  tokens or vectors) makes the model input; with a procedural source
  (`parts.sample`) the batch is drawn on device from `(seed, step)` and the
  `batch` argument is ignored;
* stateless randomness: `fold_in(state.rng, state.step)`, split into
  augmentation, model (dropout) and method keys;
* `hparams` is a pytree of traced numbers (`method`, `optim`, `schedule`):
  changing any value reuses the compiled step;
* the method plugs in through Method v2 (`common.core.method`): `loss`,
  `apply`, `value_and_grad`, `after_update`, `trainable`;
* gradient accumulation over `parts.micro_batches` micro-batches (example
  `i` goes to micro-batch `i mod m`, so every device holds a block of each);
  micro-batch losses and gradients are weighted by their `loss_mask` counts
  (or sizes), which makes the result the global-batch mean.

Nothing else in the repo takes a gradient of a training objective and
applies an optimizer update (`tests/test_layering.py` enforces it).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from common.core import method as method_lib
from common.core import optim
from common.core import sharding as sharding_lib
from common.core.train_state import TrainState

Batch = dict[str, jax.Array]
_DATA_STREAM = 0x0DA7A  # folded into the run key for procedural batches


@dataclasses.dataclass(frozen=True)
class StepParts:
  """The static structure of a train step (hashable pieces only).

  Attributes:
    model: the flax module.
    method: the Method v2 bundle.
    tx: the optimizer (already masked to the trainable leaves).
    schedule_name: learning-rate schedule kind (`common.core.optim`).
    run: the run's static facts.
    preprocess: `(batch, rng | None) -> model input`.
    normalize: float images in [0, 1] -> model input (identity otherwise).
    trainable: bool pytree like the params (static).
    sample: `sample(rng) -> batch` drawing a global batch on device, or None
      when batches come from the host.
    micro_batches: gradient-accumulation factor.
    log_norms: also return global gradient and parameter norms.
  """
  model: nn.Module
  method: method_lib.Method
  tx: optax.GradientTransformation
  schedule_name: str
  run: method_lib.RunInfo
  preprocess: Callable[[Batch, jax.Array | None], Any]
  normalize: Callable[[jax.Array], jax.Array]
  trainable: Any
  sample: Callable[[jax.Array], Batch] | None = None
  micro_batches: int = 1
  log_norms: bool = False

  def __hash__(self):
    return id(self)


def procedural_key(state_rng: jax.Array, step: jax.Array) -> jax.Array:
  """The key of step `step`'s generated batch (a function of seed, step)."""
  return jax.random.fold_in(jax.random.fold_in(state_rng, _DATA_STREAM), step)


def step_batch(parts: StepParts, state: TrainState, batch: Batch) -> Batch:
  """The batch of this step: the fed one, or the generator's draw."""
  if parts.sample is None:
    return batch
  return parts.sample(procedural_key(state.rng, state.step))


def _split_micro(tree: Any, m: int) -> Any:
  """`[b, ...]` leaves -> `[m, b / m, ...]`, micro-batch j = rows j::m."""
  def split(x):
    if x.shape[0] % m:
      raise ValueError(f"batch of {x.shape[0]} examples does not split into "
                       f"train.micro_batches={m}")
    return jnp.moveaxis(x.reshape(x.shape[0] // m, m, *x.shape[1:]), 1, 0)
  return jax.tree.map(split, tree)


def _merge_micro(tree: Any) -> Any:
  """Inverse of `_split_micro` on per-example outputs `[m, b / m, ...]`."""
  return jax.tree.map(
      lambda x: jnp.moveaxis(x, 0, 1).reshape(-1, *x.shape[2:]), tree)


def _weight(batch: Batch) -> jax.Array:
  if "loss_mask" in batch:
    return jnp.sum(batch["loss_mask"].astype(jnp.float32))
  return jnp.asarray(jax.tree.leaves(batch)[0].shape[0], jnp.float32)


def _grad_one(parts: StepParts, hp, ctx: method_lib.StepContext, params,
              method_state, batch: Batch, rng: jax.Array):
  """`((loss, StepAux), grads)` of one (micro-)batch through the method."""
  method = parts.method
  if method.apply is not None:
    apply = functools.partial(method.apply, hp, ctx)
  else:
    apply = functools.partial(method_lib.default_apply, method, hp, ctx)
  loss_fn = lambda p: apply(p, method_state, batch, rng)
  if method.value_and_grad is not None:
    return method.value_and_grad(hp, ctx, params, method_state, batch, rng,
                                 loss_fn)
  return ctx.value_and_grad(loss_fn, params)


def _accumulate(parts: StepParts, hp, base_ctx, params, state: TrainState,
                batch: Batch, inputs: Any, rng: jax.Array):
  """Weighted sum over micro-batches, model/method state threaded through."""
  m = parts.micro_batches
  micro_batch, micro_inputs = _split_micro(batch, m), _split_micro(inputs, m)

  def body(carry, xs):
    grads_sum, loss_sum, metric_sum, w_sum, model_state, method_state = carry
    j, mb, mi = xs
    ctx = dataclasses.replace(
        base_ctx, inputs=mi, model_state=model_state,
        rng_model=jax.random.fold_in(base_ctx.rng_model, j))
    (loss, aux), grads = _grad_one(parts, hp, ctx, params, method_state, mb,
                                   jax.random.fold_in(rng, j))
    w = _weight(mb)
    add = lambda total, x: total + w * x
    carry = (jax.tree.map(add, grads_sum, grads), add(loss_sum, loss),
             jax.tree.map(add, metric_sum, aux.metrics), w_sum + w,
             aux.model_state, aux.method_state)
    return carry, (aux.outputs, aux.apply_update)

  # One trace of the first micro-batch gives the pytree structures.
  shapes = jax.eval_shape(
      lambda: _grad_one(parts, hp, dataclasses.replace(
          base_ctx, inputs=jax.tree.map(lambda x: x[0], micro_inputs)),
          params, state.method_state, jax.tree.map(lambda x: x[0],
                                                   micro_batch), rng))
  (_, aux0), grads0 = shapes
  zeros = lambda t: jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), t)
  init = (zeros(grads0), jnp.zeros((), jnp.float32), zeros(aux0.metrics),
          jnp.zeros((), jnp.float32), state.model_state, state.method_state)
  carry, (outputs, updates) = jax.lax.scan(
      body, init, (jnp.arange(m), micro_batch, micro_inputs))
  grads_sum, loss_sum, metric_sum, w_sum, model_state, method_state = carry
  norm = 1.0 / jnp.maximum(w_sum, 1.0)
  scale = lambda t: jax.tree.map(lambda x: x * norm, t)
  apply_update = None if updates is None else jnp.any(updates)
  aux = method_lib.StepAux(scale(metric_sum), model_state, method_state,
                           _merge_micro(outputs), apply_update)
  return (loss_sum * norm, aux), scale(grads_sum)


def optimizer_step(tx: optax.GradientTransformation, schedule_name: str,
                   hparams: dict[str, Any], step: jax.Array, params: Any,
                   opt_state: Any, grads: Any,
                   apply_update: jax.Array | None = None, train: bool = True
                   ) -> tuple[Any, Any, jax.Array]:
  """THE optimizer update: `(params, opt_state, learning_rate)`.

  The learning rate of `step` comes from the traced schedule numbers
  (`hparams["schedule"]`) and is written, with `hparams["optim"]`, into the
  optimizer's injected hyperparameters. `apply_update=False` (a traced
  bool) keeps parameters and optimizer state (moments, count) unchanged.
  The train step and the protocols with loops of their own (the RL
  learners) update through this function only.
  """
  lr = optim.learning_rate_at(schedule_name, hparams["schedule"], step)
  if not train:
    return params, opt_state, lr
  opt_in = optim.set_hyperparams(opt_state,
                                 {"learning_rate": lr, **hparams["optim"]})
  updates, new_opt = tx.update(grads, opt_in, params)
  new_params = optax.apply_updates(params, updates)
  if apply_update is None:
    return new_params, new_opt, lr
  keep = lambda new, old: jax.tree.map(
      lambda n, o: jnp.where(apply_update, n, o), new, old)
  return keep(new_params, params), keep(new_opt, opt_state), lr


def train_step_fn(state: TrainState, batch: Batch, hparams: dict[str, Any],
                  *, parts: StepParts
                  ) -> tuple[TrainState, dict[str, jax.Array], Batch]:
  """One optimizer step. Pure; see the module docstring."""
  batch = step_batch(parts, state, batch)
  rng = jax.random.fold_in(state.rng, state.step)
  rng_aug, rng_model, rng_method = jax.random.split(rng, 3)
  inputs = parts.preprocess(batch, rng_aug)
  hp = hparams["method"]
  ctx = method_lib.StepContext(
      model=parts.model, run=parts.run, step=state.step, inputs=inputs,
      model_state=state.model_state, trainable=parts.trainable,
      rng_model=rng_model, preprocess=parts.preprocess,
      normalize=parts.normalize)
  if parts.micro_batches > 1:
    (loss, aux), grads = _accumulate(parts, hp, ctx, state.params, state,
                                     batch, inputs, rng_method)
  else:
    (loss, aux), grads = _grad_one(parts, hp, ctx, state.params,
                                   state.method_state, batch, rng_method)

  params, opt_state, lr = optimizer_step(
      parts.tx, parts.schedule_name, hparams, state.step, state.params,
      state.opt_state, grads, aux.apply_update,
      train=any(jax.tree.leaves(parts.trainable)))
  method_state = aux.method_state
  if parts.method.after_update is not None:
    ctx = dataclasses.replace(ctx, model_state=aux.model_state)
    params, method_state = parts.method.after_update(
        hp, ctx, params, method_state, jax.random.fold_in(rng_method, 1))

  metrics = {"loss": loss, "learning_rate": lr,
             **{f"method/{k}": v for k, v in aux.metrics.items()}}
  if parts.log_norms:  # one reduction per leaf: measurable on small steps
    metrics["grad_norm"] = optax.tree.norm(grads)
    metrics["param_norm"] = optax.tree.norm(params)
  new_state = state.replace(
      step=state.step + 1, params=params, opt_state=opt_state,
      model_state=aux.model_state, method_state=method_state)
  return new_state, metrics, aux.outputs


def make_train_step(parts: StepParts, mesh: jax.sharding.Mesh,
                    state_sharding: Any) -> Callable:
  """Jits `train_step_fn` for one structure.

  Args:
    parts: the static structure.
    mesh: the `("data",)` mesh.
    state_sharding: a pytree of shardings matching `TrainState`.

  Returns:
    `step(state, batch, hparams) -> (state, metrics, outputs)`, the state
    donated; metrics replicated, per-example outputs split over `"data"`.
  """
  fn = functools.partial(train_step_fn, parts=parts)
  return jax.jit(fn, donate_argnums=(0,),
                 out_shardings=(state_sharding,
                                sharding_lib.replicated(mesh),
                                sharding_lib.batch_sharded(mesh)))


def eval_step_fn(state: TrainState, batch: Batch, hparams: dict[str, Any], *,
                 parts: StepParts,
                 output_keys: tuple[str, ...] | None
                 ) -> dict[str, jax.Array]:
  """Eval-mode outputs (`Method.predict`; BatchNorm on running averages),
  float arrays cast to float32, restricted to `output_keys` (None: all)."""
  inputs = parts.preprocess(batch, None)
  ctx = method_lib.StepContext(
      model=parts.model, run=parts.run, step=state.step, inputs=inputs,
      model_state=state.model_state, trainable=parts.trainable,
      rng_model=jax.random.fold_in(state.rng, state.step),
      preprocess=parts.preprocess, normalize=parts.normalize)
  predict = parts.method.predict or method_lib.default_predict
  outputs = predict(hparams["method"], ctx, state.params, state.method_state,
                    batch)
  output_keys = tuple(outputs) if output_keys is None else output_keys
  missing = [k for k in output_keys if k not in outputs]
  if missing:
    raise ValueError(f"the model/method predicts {sorted(outputs)}; the "
                     f"evaluation needs {missing}")
  return {k: (outputs[k].astype(jnp.float32)
              if jnp.issubdtype(outputs[k].dtype, jnp.floating)
              else outputs[k]) for k in output_keys}


def make_eval_step(parts: StepParts, mesh: jax.sharding.Mesh,
                   output_keys: tuple[str, ...] = ("logits",)) -> Callable:
  """`eval_step(state, batch, hparams, output_keys=output_keys) -> {key:
  [b, ...]}`, batch-sharded; an evaluator that reads other model outputs
  (an MoE's routing, a point map) names them (one compilation per set)."""
  jitted = jax.jit(functools.partial(eval_step_fn, parts=parts),
                   static_argnames=("output_keys",),
                   out_shardings=sharding_lib.batch_sharded(mesh))

  def eval_step(state, batch, hparams, output_keys=output_keys):
    return jitted(state, batch, hparams, output_keys=tuple(output_keys))

  def lower(state, batch, hparams, output_keys=output_keys):
    return jitted.lower(state, batch, hparams, output_keys=(
        None if output_keys is None else tuple(output_keys)))
  eval_step.lower = lower   # ahead-of-time, as a jitted function's
  return eval_step

"""The ONE train step (and its eval step) that every method runs through.

`make_train_step` returns `step(state, batch, hparams) -> (state, metrics)`:

* jitted once per (model, method, optimizer structure, data config); the
  state is donated;
* data parallel: `batch` is a global array sharded over the `("data",)` mesh,
  the state is replicated, so gradients, BatchNorm statistics and method
  updates are over the *global* batch (identical numbers on 1 or N devices);
* stateless randomness: `fold_in(state.rng, state.step)`, split into
  augmentation, model (dropout) and method keys;
* `hparams` is a pytree of traced scalars/arrays (`method`, `optim`,
  `schedule`): changing any value reuses the compiled step;
* the method plugs in at two levels: `method.loss` (loss-level) and
  `method.value_and_grad` (gradient-level, defaults to `jax.value_and_grad`).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from common import method as method_lib
from common import optim
from common import sharding as sharding_lib
from common.data import augment as augment_lib
from common.train_state import TrainState


@dataclasses.dataclass(frozen=True)
class InputSpec:
  """Static on-device preprocessing of the uint8 images."""
  mean: tuple[float, ...]
  std: tuple[float, ...]
  crop_padding: int = 0
  flip: bool = False


def preprocess(images: jax.Array, spec: InputSpec,
               rng: jax.Array | None) -> jax.Array:
  """uint8 `[b, h, w, c]` -> normalised float32; augments if `rng` given."""
  if rng is not None:
    images = augment_lib.augment(rng, images, crop_padding=spec.crop_padding,
                                 flip=spec.flip)
  return augment_lib.normalize(images, spec.mean, spec.std)


def train_step_fn(state: TrainState, batch: dict[str, jax.Array],
                  hparams: dict[str, Any], *, model: nn.Module,
                  method: method_lib.Method,
                  tx: optax.GradientTransformation, schedule_name: str,
                  input_spec: InputSpec,
                  log_norms: bool = True) -> tuple[TrainState, dict]:
  """One optimizer step. Pure; see the module docstring."""
  rng = jax.random.fold_in(state.rng, state.step)
  rng_aug, rng_model, rng_method = jax.random.split(rng, 3)
  images = preprocess(batch["image"], input_spec, rng_aug)

  def loss_fn(params):
    variables = {"params": params, **state.model_state}
    if state.model_state:  # e.g. BatchNorm statistics
      outputs, new_model_state = model.apply(
          variables, images, train=True, mutable=list(state.model_state),
          rngs={"dropout": rng_model})
    else:
      outputs = model.apply(variables, images, train=True,
                            rngs={"dropout": rng_model})
      new_model_state = {}
    loss, metrics, new_method_state = method.loss(
        hparams["method"], state.method_state, outputs, batch, params,
        rng_method)
    return loss, (metrics, dict(new_model_state), new_method_state)

  if method.value_and_grad is None:
    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params)
  else:
    (loss, aux), grads = method.value_and_grad(
        hparams["method"], loss_fn, state.params, rng_method)
  metrics, new_model_state, new_method_state = aux

  lr = optim.learning_rate_at(schedule_name, hparams["schedule"], state.step)
  opt_state = optim.set_hyperparams(
      state.opt_state, {"learning_rate": lr, **hparams["optim"]})
  updates, opt_state = tx.update(grads, opt_state, state.params)
  params = optax.apply_updates(state.params, updates)

  metrics = {"loss": loss, "learning_rate": lr,
             **{f"method/{k}": v for k, v in metrics.items()}}
  if log_norms:  # one reduction per leaf: measurable on small GPU steps
    metrics["grad_norm"] = optax.tree.norm(grads)
    metrics["param_norm"] = optax.tree.norm(params)
  new_state = state.replace(
      step=state.step + 1, params=params, opt_state=opt_state,
      model_state=new_model_state, method_state=new_method_state)
  return new_state, metrics


def make_train_step(model: nn.Module, method: method_lib.Method,
                    tx: optax.GradientTransformation, schedule_name: str,
                    input_spec: InputSpec, mesh: jax.sharding.Mesh,
                    state_sharding: Any, log_norms: bool = True) -> Callable:
  """Jits `train_step_fn` for one model/method/optimizer structure.

  Args:
    model, method, tx, schedule_name, input_spec: the static structure.
    log_norms: also return the global norms of gradients and parameters.
    mesh: the `("data",)` mesh.
    state_sharding: a pytree of shardings matching `TrainState`.

  Returns:
    `step(state, batch, hparams) -> (state, metrics)`, state donated.
  """
  fn = functools.partial(train_step_fn, model=model, method=method, tx=tx,
                         schedule_name=schedule_name, input_spec=input_spec,
                         log_norms=log_norms)
  return jax.jit(
      fn, donate_argnums=(0,),
      out_shardings=(state_sharding, sharding_lib.replicated(mesh)))


def eval_step_fn(state: TrainState, batch: dict[str, jax.Array], *,
                 model: nn.Module, input_spec: InputSpec) -> jax.Array:
  """Eval-mode logits `[b, C]` float32 (BatchNorm uses running averages)."""
  images = preprocess(batch["image"], input_spec, None)
  outputs = model.apply({"params": state.params, **state.model_state},
                        images, train=False)
  return outputs["logits"].astype(jnp.float32)


def make_eval_step(model: nn.Module, input_spec: InputSpec,
                   mesh: jax.sharding.Mesh) -> Callable:
  fn = functools.partial(eval_step_fn, model=model, input_spec=input_spec)
  return jax.jit(fn, out_shardings=sharding_lib.batch_sharded(mesh))

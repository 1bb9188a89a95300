"""The method interface every paper implements, and the name registry.

A method is a small bundle of pure functions, in the spirit of an optax
`GradientTransformation`:

* `init(rng, ctx) -> method_state`: per-run state that lives on device inside
  the `TrainState` (per-example tables, EMA teachers, queues, OT potentials).
* `loss(hparams, method_state, model_outputs, batch, params, rng)
  -> (loss, metrics, new_method_state)`: the training objective of one step.
* `hparams(method_config, run) -> dict[str, float]`: maps the config section
  of the method (plus facts of the run, such as its number of epochs) to the
  numbers the loss reads. The harness turns them into traced `jnp` scalars, so
  a sweep over them never recompiles.
* `value_and_grad` (optional): the gradient-level hook for methods that need
  more than one backward pass (SAM-like). It receives the harness's closure
  `loss_fn(params) -> (loss, aux)` and returns `((loss, aux), grads)`.

Methods are registered by name with `register`, and built from the model's
`apply` function, so methods that run extra forward passes (teachers, TTA)
can close over it without the harness knowing.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable, NamedTuple, Protocol

import jax
import jax.numpy as jnp

PyTree = Any
Batch = dict[str, jax.Array]
ModelOutputs = dict[str, jax.Array]  # at least "logits" [b, C], "features"
HParams = dict[str, jax.Array]
Metrics = dict[str, jax.Array]
LossFn = Callable[[PyTree], tuple[jax.Array, Any]]


@dataclasses.dataclass(frozen=True)
class RunInfo:
  """Static facts about a run that methods may turn into hyperparameters."""
  num_examples: int      # size of the training split
  num_classes: int
  steps_per_epoch: int
  num_epochs: int        # ceil(total_steps / steps_per_epoch)
  total_steps: int
  global_batch_size: int


class InitContext(NamedTuple):
  run: RunInfo
  params: PyTree
  model_state: PyTree
  config: dict[str, Any]  # the method's config section (static choices)


class ApplyFn(Protocol):
  def __call__(self, variables: PyTree, images: jax.Array, train: bool,
               **kwargs) -> Any: ...


class Method(NamedTuple):
  """A training method: pure functions only (hashable, so `jit` can cache)."""
  name: str
  init: Callable[[jax.Array, InitContext], PyTree]
  loss: Callable[[HParams, PyTree, ModelOutputs, Batch, PyTree, jax.Array],
                 tuple[jax.Array, Metrics, PyTree]]
  hparams: Callable[[dict[str, Any], RunInfo], dict[str, float]]
  value_and_grad: Callable[[HParams, LossFn, PyTree, jax.Array],
                           tuple[tuple[jax.Array, Any], PyTree]] | None = None


def default_hparams(method_config: dict[str, Any],
                    run: RunInfo) -> dict[str, float]:
  """Every numeric field of the method's config section, unchanged."""
  del run
  return {k: float(v) for k, v in method_config.items()}


def stateless_init(rng: jax.Array, ctx: InitContext) -> PyTree:
  del rng, ctx
  return {}


def masked_mean(values: jax.Array, mask: jax.Array) -> jax.Array:
  """Mean of `values` [b] over rows where `mask` [b] is true (0 if none)."""
  mask = mask.astype(values.dtype)
  return jnp.sum(values * mask) / jnp.maximum(jnp.sum(mask), 1.0)


# ----------------------------------------------------------------- registry
_FACTORIES: dict[str, Callable[[ApplyFn], Method]] = {}
# Where each registered method lives, so the registry imports lazily.
_MODULES = {
    "cross_entropy": "algos.baselines.cross_entropy",
    "ps_kd": "algos.distillation.ps_kd",
    "qlae": "algos.disentanglement.qlae",
    "ae": "algos.disentanglement.ae",
    "beta_vae": "algos.disentanglement.beta_vae",
    "beta_tcvae": "algos.disentanglement.beta_tcvae",
}


def register(name: str):
  """Decorator: `@register("ps_kd") def make(apply_fn) -> Method`."""
  def wrap(factory: Callable[[ApplyFn], Method]):
    if name in _FACTORIES and _FACTORIES[name] is not factory:
      raise ValueError(f"method {name!r} registered twice")
    _FACTORIES[name] = factory
    return factory
  return wrap


def method_names() -> list[str]:
  return sorted(_MODULES)


def get_method(name: str, apply_fn: ApplyFn) -> Method:
  """Builds the registered method `name` for a model's `apply_fn`."""
  if name not in _MODULES:
    raise ValueError(
        f"unknown method {name!r}; registered methods: {method_names()}")
  if name not in _FACTORIES:
    importlib.import_module(_MODULES[name])
  return _FACTORIES[name](apply_fn)

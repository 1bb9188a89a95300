"""Method v2: the one interface every paper implements, and its registry.

A method is a small bundle of pure functions, in the spirit of an optax
`GradientTransformation`. Every hook but `name` has a default, so a
loss-level regulariser writes only `loss` and `hparams`:

* `hparams(method_config, run) -> {name: float}`: the numbers the method
  reads. The harness makes them traced `jnp` scalars, so a sweep never
  recompiles.
* `load(method_config, run) -> extras` (host, optional): reads what `init`
  needs from disk before anything is jitted (teacher checkpoints,
  pretrained weights). Reaches `init` as `ctx.extras`.
* `init(rng, ctx: InitContext) -> method_state | InitOutput`: per-run state
  on device (PS-KD's table, EMA teachers, queues, prototypes). Returning an
  `InitOutput` may also replace the trained parameters and model state
  (a student initialised from its teacher; TTA starting from the source).
* `loss(hp, method_state, outputs, batch, params, rng)
  -> (loss, metrics, method_state)`: the objective on the model's outputs of
  the harness's single forward pass (the default `apply`).
* `apply(hp, ctx: StepContext, params, method_state, batch, rng)
  -> (loss, StepAux)`: owns the forward pass(es) and the loss (teachers,
  two views, PGD inside the step). The harness differentiates it.
* `value_and_grad(hp, ctx, params, method_state, batch, rng, loss_fn)
  -> ((loss, StepAux), grads)`: the gradient-level hook (SAM-like, inner
  loops, TTA methods that back-propagate a sub-batch). `loss_fn(params)`
  is the harness's closure of `apply`.
* `after_update(hp, ctx, params, method_state, rng) -> (params, state)`:
  runs after the optimizer step (EMA teachers, stochastic restore,
  prototype and queue updates).
* `predict(hp, ctx, params, method_state, batch) -> outputs`: what the
  model predicts at evaluation (CoTTA's teacher); default a `train=False`
  forward.
* `rules`: `{hyperparameter: config.Rule}`, the declared valid range of
  each number of the method's config section, checked when a config is
  validated (`config.method.<name>.<key>` named in the error).
* `trainable`: which parameters train, `"all"`, `"norm"` (normalisation
  scales and biases: Tent, EATA), `"none"`, or a function of the params
  pytree returning a bool pytree. Frozen leaves get no gradient and no
  optimizer state update.

Methods are registered with `@register_method("id")` on a factory
`make(method_config: dict) -> Method`; the registry finds them by scanning
`algos/` (see `common.registry`), so adding a paper edits no shared file.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from common import registry

PyTree = Any
Batch = dict[str, jax.Array]
ModelOutputs = dict[str, jax.Array]  # "logits" [b, C], "features" [b, d]...
HParams = dict[str, jax.Array]
Metrics = dict[str, jax.Array]

TRAINABLE = ("all", "norm", "none")


@dataclasses.dataclass(frozen=True)
class RunInfo:
  """Static facts about a run that methods may turn into hyperparameters."""
  num_examples: int      # size of the training split (0: a generator)
  num_classes: int
  steps_per_epoch: int
  num_epochs: int        # ceil(total_steps / steps_per_epoch)
  total_steps: int
  global_batch_size: int
  micro_batches: int = 1  # gradient accumulation


class InitContext(NamedTuple):
  """What `Method.init` sees (host values and static structure)."""
  run: RunInfo
  params: PyTree
  model_state: PyTree
  config: dict[str, Any]       # the method's config section (static)
  model: nn.Module | None = None
  extras: Any = None           # `Method.load`'s result, protocol arrays
  # With a procedural source: the generator's `sample(rng, n) -> batch`,
  # for data-dependent initialisations (jittable; draw with `init`'s key).
  sample: Callable[[jax.Array, int], dict[str, jax.Array]] | None = None
  # `init_params(rng) -> params`: a fresh draw of the model's initial
  # parameters (a second network of the same architecture: a random
  # teacher, an independently initialised student).
  init_params: Callable[[jax.Array], PyTree] | None = None
  # The preprocessed dummy model input the model was initialised with
  # (shapes for a method's own networks: pg_noise_mask's policy).
  example_input: Any = None


class InitOutput(NamedTuple):
  """`init` may return this to replace the initial params / model state."""
  method_state: PyTree
  params: PyTree | None = None
  model_state: PyTree | None = None


class StepAux(NamedTuple):
  """The auxiliary result of a step's loss.

  Attributes:
    metrics: scalars, logged as `method/<name>`.
    model_state: the new model state (BatchNorm statistics).
    method_state: the new method state.
    outputs: per-example arrays `[b, ...]` returned by the step (TTA's
      reported predictions); `{}` for most methods.
    apply_update: bool scalar; False skips the optimizer step (parameters,
      moments and count unchanged, like not calling `optimizer.step()`).
  """
  metrics: Metrics
  model_state: PyTree
  method_state: PyTree
  outputs: dict[str, jax.Array] = {}
  apply_update: jax.Array | None = None


def trainable_mask(params: PyTree, trainable: str | Callable) -> PyTree:
  """Bool pytree (Python bools, static): which leaves train.

  `"norm"` selects the `scale` and `bias` of normalisation layers, found as
  the parameter modules that hold a `scale` (flax's BatchNorm, LayerNorm,
  GroupNorm), as the official Tent/EATA `collect_params` take BatchNorm
  weight and bias.
  """
  if callable(trainable):
    return jax.tree.map(bool, trainable(params))
  if trainable not in TRAINABLE:
    raise ValueError(f"trainable={trainable!r}; allowed {TRAINABLE} or a "
                     "function of the params returning a bool pytree")

  def visit(node, is_norm):
    if isinstance(node, dict) or hasattr(node, "items"):
      norm = "scale" in node
      return {k: visit(v, norm) for k, v in node.items()}
    return trainable == "all" or (trainable == "norm" and is_norm)

  mask = visit(params, False)
  if trainable == "norm" and not any(jax.tree.leaves(mask)):
    raise ValueError("trainable='norm' but the model has no normalisation "
                     "layer (no parameter module with a 'scale')")
  return mask


@dataclasses.dataclass(frozen=True)
class StepContext:
  """The model-facing pieces a method may use inside the jitted step.

  Attributes:
    model: the flax module.
    run: the run's static facts.
    step: int32 scalar, optimizer steps taken before this one.
    inputs: the preprocessed (augmented, normalised) model input of this
      (micro-)batch, e.g. float32 `[b, h, w, c]` images or int32 tokens.
    model_state: the current model state (BatchNorm statistics...).
    trainable: bool pytree like the params (static).
    rng_model: dropout key of this step.
    preprocess: `preprocess(batch, rng | None) -> inputs`, the data
      config's preprocessing (a method's second view: call it with another
      key).
    normalize: maps float images in [0, 1] to model inputs (identity for
      non-image data): augmentations written in pixel space use it.
  """
  model: nn.Module
  run: RunInfo
  step: jax.Array
  inputs: Any
  model_state: PyTree
  trainable: PyTree
  rng_model: jax.Array
  preprocess: Callable[[Batch, jax.Array | None], Any]
  normalize: Callable[[jax.Array], jax.Array]

  def forward(self, params: PyTree, inputs: Any = None, *, train: bool = True,
              model_state: PyTree = None, rng: jax.Array | None = None,
              model: nn.Module | None = None, **model_kwargs: Any
              ) -> tuple[ModelOutputs, PyTree]:
    """`(outputs, new_model_state)` of a forward pass.

    Args:
      params: the parameters (the trained ones, a teacher's...).
      inputs: model input; default this step's `inputs`.
      train: train mode (dropout on, BatchNorm on batch statistics and
        updating them); the updated statistics are returned, and the
        caller decides whether to keep them (TTA throws them away).
      model_state: other collections; default this step's.
      rng: dropout key; default `rng_model`.
      model: another module (a teacher of a different architecture).
      **model_kwargs: further arguments of the module's `__call__` (a
        transformer's `segment_ids`, `positions`, `compute_logits`).
    """
    model = model or self.model
    inputs = self.inputs if inputs is None else inputs
    model_state = self.model_state if model_state is None else model_state
    rngs = {"dropout": self.rng_model if rng is None else rng}
    variables = {"params": params, **model_state}
    if train and model_state:
      outputs, new_state = model.apply(variables, inputs, train=True,
                                       mutable=list(model_state), rngs=rngs,
                                       **model_kwargs)
      return outputs, dict(new_state)
    return (model.apply(variables, inputs, train=train, rngs=rngs,
                        **model_kwargs), model_state)

  def stop_frozen(self, params: PyTree) -> PyTree:
    """`params` with gradients stopped at frozen leaves."""
    return jax.tree.map(lambda x, m: x if m else jax.lax.stop_gradient(x),
                        params, self.trainable)

  def value_and_grad(self, fn: Callable, params: PyTree):
    """`jax.value_and_grad(fn, has_aux=True)` with frozen leaves stopped, so
    XLA never computes their weight gradients."""
    return jax.value_and_grad(lambda p: fn(self.stop_frozen(p)),
                              has_aux=True)(params)


class Method(NamedTuple):
  """A training method: pure functions only (hashable, so `jit` caches)."""
  name: str
  loss: Callable | None = None
  hparams: Callable[[dict[str, Any], RunInfo], dict[str, float]] | None = None
  init: Callable | None = None
  apply: Callable | None = None
  value_and_grad: Callable | None = None
  after_update: Callable | None = None
  predict: Callable | None = None
  trainable: str | Callable = "all"
  load: Callable | None = None
  rules: Any = None   # {key: common.config.Rule} of the method's section


# ------------------------------------------------------------ defaults
def default_hparams(method_config: dict[str, Any],
                    run: RunInfo) -> dict[str, float]:
  """Every numeric (non-bool) field of the method's config section."""
  del run
  return {k: float(v) for k, v in method_config.items()
          if isinstance(v, (int, float)) and not isinstance(v, bool)}


def stateless_init(rng: jax.Array, ctx: InitContext) -> PyTree:
  del rng, ctx
  return {}


def default_apply(method: Method, hp: HParams, ctx: StepContext,
                  params: PyTree, method_state: PyTree, batch: Batch,
                  rng: jax.Array) -> tuple[jax.Array, StepAux]:
  """One train-mode forward on `ctx.inputs`, then `method.loss`."""
  if method.loss is None:
    raise ValueError(f"method {method.name!r} defines neither `loss` nor "
                     "`apply`")
  outputs, model_state = ctx.forward(params)
  loss, metrics, method_state = method.loss(hp, method_state, outputs, batch,
                                            params, rng)
  return loss, StepAux(metrics, model_state, method_state)


def default_predict(hp: HParams, ctx: StepContext, params: PyTree,
                    method_state: PyTree, batch: Batch) -> ModelOutputs:
  del hp, method_state, batch
  return ctx.forward(params, train=False)[0]


def hparams_of(method: Method, method_config: dict[str, Any],
               run: RunInfo) -> dict[str, float]:
  return (method.hparams or default_hparams)(method_config, run)


def masked_mean(values: jax.Array, mask: jax.Array) -> jax.Array:
  """Mean of `values` [b, ...] over entries where `mask` is true (0 if none).

  Per-token and per-pixel losses use it with the batch's `loss_mask`; the
  harness weights micro-batches by the same counts (global-batch mean).
  """
  mask = jnp.broadcast_to(mask, values.shape).astype(values.dtype)
  return jnp.sum(values * mask) / jnp.maximum(jnp.sum(mask), 1.0)


# ----------------------------------------------------------- registry
METHODS: registry.Registry[Callable[[dict[str, Any]], Method]] = (
    registry.Registry("method", ("algos",), "register_method"))
register_method = METHODS.register


def method_names() -> list[str]:
  return METHODS.names()


def get_method(name: str, method_config: dict[str, Any] | None = None
               ) -> Method:
  """Builds the registered method `name` from its config section."""
  method = METHODS.get(name)(dict(method_config or {}))
  if not isinstance(method, Method):
    raise TypeError(f"the factory of method {name!r} returned "
                    f"{type(method).__name__}, not a Method")
  return method

"""The test-time adaptation (TTA) harness: one jitted adapt step per batch.

TTA methods (Tent, EATA, CoTTA, open-set selection) adapt a *trained*
classifier on a stream of unlabeled test batches: each batch is predicted and
then used for one update. They do not fit `common.method.Method` (a training
loss over labelled batches), so they implement the TTA-method interface
below and register with `register_tta`; the harness owns everything else:

* `AdaptState` (params, optimizer state, method state, counters) is one
  pytree; a *reset* restores all of it (params AND optimizer AND method
  state), as the official `reset()`s reload model and optimizer.
* `make_adapter(...).run` adapts on a whole stream `[T, b, h, w, c]` with no
  host sync per batch, either as one jitted `lax.scan` (`loop="scan"`) or
  as a host loop that dispatches the jitted step per batch asynchronously
  (`loop="host"`, the state donated). `"auto"` picks the host loop on CPU:
  XLA:CPU runs weight-gradient convolutions about 10x slower inside a
  while loop than outside (CoTTA, which trains all weights, measured 637
  vs 118 ms per batch on the digits CNN; Tent 108 vs 64). Each step is:
  `method.adapt` returns the batch's reported logits (made before/at the
  update, as the official codes return them) and gradients, then the
  optimizer step is applied (skipped when the method says so, e.g. EATA
  with no selected sample), then `method.after_update` (CoTTA's EMA teacher
  and stochastic restore).
* BatchNorm uses the statistics of the test batch: `ctx.forward` runs the
  model with `train=True` and throws the running-average update away, like
  `track_running_stats=False` in the official `configure_model`s. Under
  `jit` with the batch sharded over the `("data",)` mesh (axis `Auto`), the
  batch mean/variance in flax's BatchNorm are `jnp.mean`s over the GLOBAL
  batch, so 1 and N devices compute the same statistics (tested).
* Which parameters train is the method's static choice: `"norm"` (scale and
  bias of normalisation layers, as Tent/EATA/OSTTA), `"all"` (CoTTA) or
  `"none"`. `ctx.value_and_grad` stops gradients at frozen leaves (so XLA
  never computes their weight gradients) and the optimizer is
  `optax.multi_transform` with `set_to_zero` on frozen leaves (no optimizer
  moments for them).
* Hyperparameters (the method's numbers, the optimizer's numbers) are a
  traced pytree: changing them never recompiles.

The TTA-method interface (`TTAMethod`), pure functions only:

* `init(rng, params, ctx) -> method_state` (EMA teacher, anchor, Fisher...).
* `adapt(hp, method_state, params, images, rng, ctx) -> AdaptOutput`:
  `images` float32 `[b, h, w, c]` in [0, 1].
* `predict(hp, method_state, params, images, ctx) -> logits [b, C]`: what
  the adapted model predicts without adapting (clean error after
  adaptation; CoTTA predicts with its teacher).
* `after_update(hp, method_state, params, rng, ctx) -> (params, state)`.
* `hparams(method_config, num_classes) -> dict[str, float]`.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable, NamedTuple

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import optax

from common.core import optim
from common.core import sharding as sharding_lib

PyTree = Any
HParams = dict[str, jax.Array]
_TRAINS = ("none", "norm", "all")


class AdaptOutput(NamedTuple):
  """What `TTAMethod.adapt` returns for one batch.

  Attributes:
    logits: `[b, C]` float32, the batch's reported prediction.
    grads: gradients with the structure of params (zeros on frozen leaves),
      or None for methods that do not train.
    update: bool scalar, whether to apply the optimizer step.
    method_state: the new method state.
    metrics: scalars; `backward_samples` (samples whose loss was
      back-propagated) and `backward_rows` (rows that went through a backward
      pass, i.e. the compute) are summed by the harness.
  """
  logits: jax.Array
  grads: PyTree | None
  update: jax.Array
  method_state: PyTree
  metrics: dict[str, jax.Array]


class TTAMethod(NamedTuple):
  """A test-time adaptation method (see the module docstring)."""
  name: str
  trains: str
  init: Callable[..., PyTree]
  adapt: Callable[..., AdaptOutput]
  predict: Callable[..., jax.Array]
  hparams: Callable[[dict[str, Any], int], dict[str, float]]
  after_update: Callable[..., tuple[PyTree, PyTree]] | None = None


@dataclasses.dataclass(frozen=True)
class AdaptContext:
  """The model-facing functions a method may call inside the jitted step.

  Attributes:
    forward: `forward(params, images, rng=None, batch_stats=True) -> logits`
      on float images in [0, 1] (normalised inside); BatchNorm with the
      test batch's statistics unless `batch_stats=False` (running averages
      of the source model).
    value_and_grad: `value_and_grad(fn, params) -> ((value, aux), grads)`
      for `fn(params) -> (value, aux)`; gradients only for trainable leaves.
    trainable: bool pytree like params.
    num_classes: C.
    clean_images: uint8 `[n_batches, b, h, w, c]` clean in-distribution
      images (EATA's Fisher), or None.
  """
  forward: Callable[..., jax.Array]
  value_and_grad: Callable[..., Any]
  trainable: PyTree
  num_classes: int
  clean_images: jax.Array | None = None

  def stop_frozen(self, params: PyTree) -> PyTree:
    """`params` with gradients stopped at frozen leaves (for `jax.vjp`)."""
    return jax.tree.map(
        lambda x, m: x if m else jax.lax.stop_gradient(x), params,
        self.trainable)


@flax.struct.dataclass
class AdaptState:
  """Everything that changes while adapting (and that a reset restores).

  Attributes:
    step: int32, batches adapted on since the last reset.
    params: model parameters.
    opt_state: optimizer state (multi_transform over trainable leaves).
    model_state: non-trained collections of the source model (BatchNorm
      running averages, used only by the `source` method); never updated.
    method_state: the method's own state.
    rng: base key; batch t uses `fold_in(rng, step)`.
    backward_samples: float32, samples whose loss was back-propagated.
    backward_rows: float32, rows that went through a backward pass.
  """
  step: jax.Array
  params: PyTree
  opt_state: PyTree
  model_state: PyTree
  method_state: PyTree
  rng: jax.Array
  backward_samples: jax.Array
  backward_rows: jax.Array


# ----------------------------------------------------------------- registry
_TTA_FACTORIES: dict[str, Callable[[dict[str, Any]], TTAMethod]] = {}
_TTA_MODULES = {
    "source": "algos.tta.baselines",
    "bn_adapt": "algos.tta.baselines",
    "tent": "algos.tta.baselines",
    "eata": "algos.tta.eata",
    "cotta": "algos.tta.cotta",
    "ostta": "algos.tta.ostta_woc",
}


def register_tta(name: str):
  """Decorator: `@register_tta("tent") def make(static_config) -> TTAMethod`.

  The factory receives the method's config section (a dict) and reads the
  static choices (e.g. CoTTA's number of augmentations) from it.
  """
  def wrap(factory):
    if name in _TTA_FACTORIES and _TTA_FACTORIES[name] is not factory:
      raise ValueError(f"TTA method {name!r} registered twice")
    _TTA_FACTORIES[name] = factory
    return factory
  return wrap


def tta_method_names() -> list[str]:
  return sorted(_TTA_MODULES)


def get_tta_method(name: str, config: dict[str, Any]) -> TTAMethod:
  """Builds the registered TTA method `name` from its config section."""
  if name not in _TTA_MODULES:
    raise ValueError(f"unknown TTA method {name!r}; registered: "
                     f"{tta_method_names()}")
  if name not in _TTA_FACTORIES:
    importlib.import_module(_TTA_MODULES[name])
  method = _TTA_FACTORIES[name](dict(config))
  if method.trains not in _TRAINS:
    raise ValueError(f"TTA method {name!r}: trains={method.trains!r}, "
                     f"allowed {_TRAINS}")
  return method


# ------------------------------------------------------- trainable params
def trainable_mask(params: PyTree, trains: str) -> PyTree:
  """Bool pytree: which leaves a method with `trains` updates.

  `"norm"` selects the `scale` and `bias` of normalisation layers, found
  structurally as the modules whose parameters include a `scale` (flax's
  BatchNorm/LayerNorm/GroupNorm): the official `collect_params` of
  Tent/EATA takes BatchNorm weight and bias.
  """
  if trains not in _TRAINS:
    raise ValueError(f"trains={trains!r}; allowed {_TRAINS}")

  def visit(node, is_norm):
    if isinstance(node, dict) or hasattr(node, "items"):
      norm = "scale" in node
      return {k: visit(v, norm) for k, v in node.items()}
    if trains == "all":
      return True
    return trains == "norm" and is_norm

  mask = visit(params, False)
  if trains == "norm" and not any(jax.tree.leaves(mask)):
    raise ValueError("trains='norm' but the model has no normalisation "
                     "layer (no parameter module with a 'scale'); Tent-like "
                     "methods need BatchNorm")
  return mask


def make_optimizer(name: str, nesterov: bool, mask: PyTree
                   ) -> optax.GradientTransformation:
  """`common.optim`'s optimizer on trainable leaves, zero updates elsewhere."""
  labels = jax.tree.map(lambda m: "train" if m else "frozen", mask)
  return optax.multi_transform(
      {"train": optim.make_optimizer(name, nesterov=nesterov),
       "frozen": optax.set_to_zero()}, labels)


def _set_optim_hparams(opt_state, values: HParams):
  inner = opt_state.inner_states["train"]
  inner = inner._replace(
      inner_state=optim.set_hyperparams(inner.inner_state, values))
  return opt_state._replace(
      inner_states={**opt_state.inner_states, "train": inner})


def optimizer_hparams(cfg: Any) -> dict[str, float]:
  """Traced numbers of the adaptation optimizer (`config.adapt.optim`)."""
  hp = {"learning_rate": cfg.learning_rate, "weight_decay": cfg.weight_decay,
        "max_norm": 1.0}
  if cfg.name == "sgd":
    hp["momentum"] = cfg.momentum
  else:
    hp.update(b1=cfg.b1, b2=cfg.b2, eps=cfg.eps)
  return {k: float(v) for k, v in hp.items()}


# --------------------------------------------------------------- context
def _make_context(model: nn.Module, model_state: PyTree, mask: PyTree,
                  num_classes: int, mean: tuple[float, ...],
                  std: tuple[float, ...],
                  clean_images: jax.Array | None) -> AdaptContext:
  mean_a = jnp.asarray(mean, jnp.float32)
  std_a = jnp.asarray(std, jnp.float32)

  def forward(params, images, rng=None, batch_stats=True):
    x = (images - mean_a) / std_a
    variables = {"params": params, **model_state}
    rngs = {"dropout": rng} if rng is not None else {}
    if batch_stats and model_state:
      # Test-batch statistics; the running-average update is discarded.
      outputs, _ = model.apply(variables, x, train=True,
                               mutable=list(model_state), rngs=rngs)
    else:
      outputs = model.apply(variables, x, train=batch_stats, rngs=rngs)
    return outputs["logits"].astype(jnp.float32)

  def value_and_grad(fn, params):
    def masked(p):
      p = jax.tree.map(lambda x, m: x if m else jax.lax.stop_gradient(x),
                       p, mask)
      return fn(p)
    return jax.value_and_grad(masked, has_aux=True)(params)

  return AdaptContext(forward=forward, value_and_grad=value_and_grad,
                      trainable=mask, num_classes=num_classes,
                      clean_images=clean_images)


@dataclasses.dataclass
class Adapter:
  """The jitted pieces for one (model, method, optimizer) structure.

  Attributes:
    init: `init(params, model_state, rng, clean_images) -> AdaptState`.
    run: `run(state, images [T, b, h, w, c] uint8, hparams)
      -> (state, predictions [T, b] int32, metrics {name: [T]})`, one
      `lax.scan` or a host loop of asynchronously dispatched jitted steps
      (see `loop`); `state` itself is never modified or donated.
    step: `step(state, images [b, h, w, c], hparams) -> (state, logits,
      metrics)`, one batch (tests, benchmarks).
    predict: `predict(state, images [T, b, ...], hparams) -> [T, b]`
      predictions without adapting.
  """
  method: TTAMethod
  init: Callable
  run: Callable
  step: Callable
  predict: Callable


def make_adapter(model: nn.Module, method: TTAMethod, *, num_classes: int,
                 mean: tuple[float, ...], std: tuple[float, ...],
                 optimizer: str = "adamw", nesterov: bool = False,
                 mesh: jax.sharding.Mesh | None = None,
                 loop: str = "auto") -> Adapter:
  """Builds the jitted TTA functions of `method` on `model`.

  Args:
    model: the flax classifier (returns `{"logits", ...}`).
    method: a `TTAMethod`.
    num_classes: C.
    mean, std: input normalisation of the source model (of x / 255).
    optimizer: `common.optim` optimizer name (`adamw` = Adam when its
      weight decay is 0, `sgd`).
    nesterov: Nesterov momentum for SGD.
    mesh: the data mesh (default: every device).
    loop: how `run` walks the stream: `"scan"` (one `lax.scan` program),
      `"host"` (a jitted step per batch, dispatched without host sync) or
      `"auto"` (`"host"` on CPU, `"scan"` elsewhere). Both give the same
      numbers up to float summation order (tested).
  """
  if loop not in ("auto", "scan", "host"):
    raise ValueError(f"loop={loop!r}: allowed are 'auto', 'scan', 'host'")
  mesh = mesh or sharding_lib.make_mesh()
  if loop == "auto":
    loop = "host" if mesh.devices.flat[0].platform == "cpu" else "scan"
  repl = sharding_lib.replicated(mesh)
  batch = jax.sharding.NamedSharding(
      mesh, jax.sharding.PartitionSpec(None, sharding_lib.DATA_AXIS))

  def parts(params, model_state, clean_images=None):
    mask = trainable_mask(params, method.trains)
    ctx = _make_context(model, model_state, mask, num_classes, mean, std,
                        clean_images)
    tx = make_optimizer(optimizer, nesterov, mask)
    return ctx, tx

  def init_fn(params, model_state, rng, clean_images):
    ctx, tx = parts(params, model_state, clean_images)
    zero = jnp.zeros((), jnp.float32)
    return AdaptState(
        step=jnp.zeros((), jnp.int32), params=params,
        opt_state=tx.init(params), model_state=model_state,
        method_state=method.init(jax.random.fold_in(rng, 1), params, ctx),
        rng=rng, backward_samples=zero, backward_rows=zero)

  def step_fn(state: AdaptState, images_u8: jax.Array, hparams: HParams):
    ctx, tx = parts(state.params, state.model_state)
    rng = jax.random.fold_in(state.rng, state.step)
    rng_adapt, rng_after = jax.random.split(rng)
    images = images_u8.astype(jnp.float32) / 255.0
    out = method.adapt(hparams["method"], state.method_state, state.params,
                       images, rng_adapt, ctx)
    params, opt_state, mstate = state.params, state.opt_state, (
        out.method_state)
    if method.trains != "none":
      opt_in = _set_optim_hparams(opt_state, hparams["optim"])
      updates, new_opt = tx.update(out.grads, opt_in, params)
      new_params = optax.apply_updates(params, updates)
      # Skipping keeps Adam's moments and count too, like not calling
      # optimizer.step() in PyTorch.
      keep = lambda new, old: jax.tree.map(
          lambda n, o: jnp.where(out.update, n, o), new, old)
      params, opt_state = keep(new_params, params), keep(new_opt, opt_state)
      if method.after_update is not None:
        params, mstate = method.after_update(hparams["method"], mstate,
                                             params, rng_after, ctx)
    metrics = dict(out.metrics)
    bs = metrics.get("backward_samples", jnp.zeros((), jnp.float32))
    br = metrics.get("backward_rows", jnp.zeros((), jnp.float32))
    new_state = state.replace(
        step=state.step + 1, params=params, opt_state=opt_state,
        method_state=mstate, backward_samples=state.backward_samples + bs,
        backward_rows=state.backward_rows + br)
    return new_state, out.logits, metrics

  def predicting_step(s, x, hparams):
    s, logits, metrics = step_fn(s, x, hparams)
    return s, (jnp.argmax(logits, -1).astype(jnp.int32), metrics)

  def run_fn(state, images, hparams):
    state, (preds, metrics) = jax.lax.scan(
        lambda s, x: predicting_step(s, x, hparams), state, images)
    return state, preds, metrics

  batch_1d = jax.sharding.NamedSharding(
      mesh, jax.sharding.PartitionSpec(sharding_lib.DATA_AXIS))
  host_step = jax.jit(predicting_step, donate_argnums=0,
                      out_shardings=(repl, (batch_1d, repl)))

  def run_host(state, images, hparams):
    state = copy_state(state)  # the caller's state stays valid (donation)
    outputs = []
    for t in range(images.shape[0]):
      state, out = host_step(state, images[t], hparams)
      outputs.append(out)
    preds, metrics = jax.tree.map(lambda *xs: jnp.stack(xs), *outputs)
    return state, preds, metrics

  def predict_fn(state, images, hparams):
    ctx, _ = parts(state.params, state.model_state)

    def body(_, x):
      logits = method.predict(hparams["method"], state.method_state,
                              state.params, x.astype(jnp.float32) / 255.0,
                              ctx)
      return None, jnp.argmax(logits, -1).astype(jnp.int32)
    return jax.lax.scan(body, None, images)[1]

  return Adapter(
      method=method,
      init=jax.jit(init_fn, out_shardings=repl),
      run=(jax.jit(run_fn, out_shardings=(repl, batch, repl))
           if loop == "scan" else run_host),
      step=jax.jit(step_fn),
      predict=jax.jit(predict_fn, out_shardings=batch))


def build_hparams(method: TTAMethod, method_config: dict[str, Any],
                  optim_config: Any, num_classes: int) -> HParams:
  """The traced hyperparameter pytree (float32 scalars)."""
  hp = {"method": method.hparams(dict(method_config), num_classes),
        "optim": optimizer_hparams(optim_config)}
  return jax.tree.map(lambda v: jnp.asarray(v, jnp.float32), hp)


def copy_state(state: AdaptState) -> AdaptState:
  """A fresh copy (a reset point that later runs cannot alias)."""
  return jax.tree.map(jnp.copy, state)


def stream_sharding(mesh: jax.sharding.Mesh) -> jax.sharding.NamedSharding:
  """`[T, b, ...]` streams: batch axis (1) split over `"data"`."""
  return jax.sharding.NamedSharding(
      mesh, jax.sharding.PartitionSpec(None, sharding_lib.DATA_AXIS))

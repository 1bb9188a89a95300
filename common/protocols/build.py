"""Building the one train step from a config: data, model, method, optimizer.

`setup(config)` opens the data (a TFDS split or a procedural generator) and
calls `build`, which needs only the run's shape facts (`RunInfo`, one
example's arrays), so benchmarks and tests build the exact step every
experiment uses. Every protocol that trains (supervised, TTA, ...) builds
its step here.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Iterator

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np

from common import models
from common.core import method as method_lib
from common.core import optim
from common.core import sharding as sharding_lib
from common.core import train_step as train_step_lib
from common.core.train_state import TrainState
from common.data import category_discovery
from common.data import label_noise
from common.data import loader as loader_lib
from common.data import preprocess as preprocess_lib
from common.data import procedural

Batch = dict[str, Any]


@dataclasses.dataclass
class Setup:
  """Everything a protocol builds from a config (tests/benchmarks too)."""
  config: mlc.ConfigDict
  mesh: jax.sharding.Mesh
  train_source: Any            # an ArraySource, or None for a generator
  eval_source: Any
  generator: procedural.Generator | None
  run: method_lib.RunInfo
  model: Any
  method: method_lib.Method
  parts: train_step_lib.StepParts
  hparams: dict[str, Any]
  abstract_state: TrainState
  init_state: Callable[..., TrainState]
  train_step: Callable
  eval_step: Callable

  def eval_batches(self) -> Iterator[Batch]:
    """Global eval batches (with `mask` for padded rows) on the mesh."""
    if self.generator is not None:
      n = self.generator.eval_examples
      if n <= 0:
        raise ValueError(f"generator {self.config.data.name!r} has no "
                         "held-out examples (eval_examples = 0)")
      for batch in procedural.eval_batches(
          self.generator, self.config.seed, self.config.train.eval_batch_size,
          n):
        yield jax.device_put(batch, sharding_lib.batch_sharded(self.mesh))
      return
    for local in loader_lib.eval_batches(
        self.eval_source, self.config.train.eval_batch_size,
        jax.process_index(), jax.process_count()):
      yield sharding_lib.shard_batch(local, self.mesh)

  def train_batches(self, start_step: int) -> Iterator[Batch]:
    """The fed batches from `start_step` on (`{}` for a generator)."""
    if self.generator is not None:
      while True:
        yield {}
    iterator = loader_lib.TrainIterator(
        self.train_source, self.config.train.batch_size,
        seed=self.config.seed, start_step=start_step)
    try:
      for local in iterator:
        yield sharding_lib.shard_batch(local, self.mesh)
    finally:
      iterator.close()


def build_hparams(config: mlc.ConfigDict, method: method_lib.Method,
                  run: method_lib.RunInfo) -> dict[str, Any]:
  """The traced-hyperparameter pytree passed to every step (host values)."""
  method_cfg = config.method[config.method.name].to_dict()
  hp = {
      "method": method_lib.hparams_of(method, method_cfg, run),
      "optim": optim.optimizer_hparams(config.optim, seed=config.seed),
      "schedule": optim.schedule_hparams(config.schedule, run.steps_per_epoch,
                                         run.total_steps),
  }
  return jax.tree.map(lambda v: jnp.asarray(v, jnp.float32), hp)


def run_info(config: mlc.ConfigDict, num_examples: int,
             num_classes: int) -> method_lib.RunInfo:
  """Steps per epoch, total steps and epochs of `config` on a dataset."""
  batch = config.train.batch_size
  spe = loader_lib.steps_per_epoch(num_examples, batch, drop_remainder=True)
  if spe == 0:
    raise ValueError(f"train.batch_size={batch} is larger than the "
                     f"{num_examples} training examples")
  total = (config.train.steps if config.train.steps > 0
           else config.train.num_epochs * spe)
  return method_lib.RunInfo(
      num_examples=num_examples, num_classes=num_classes,
      steps_per_epoch=spe, num_epochs=math.ceil(total / spe),
      total_steps=total, global_batch_size=batch,
      micro_batches=config.train.micro_batches)


def open_data(config: mlc.ConfigDict):
  """`(train_source, eval_source, generator, example, num_examples,
  num_classes)` of the config's data section."""
  d = config.data
  if d.source == "generator":
    gen = procedural.make(config)
    size = gen.epoch_size or config.train.batch_size
    return None, None, gen, gen.example, size, gen.num_classes
  if d.source == "text":  # packed token rows (common.data.text)
    from common.data.text import source as text_source  # pylint: disable=g-import-not-at-top
    train, evals = text_source.open_data(d)
    example = {d.input_key: train.example["tokens"]}
    return train, evals, None, example, len(train), train.vocab_size
  from common.data import sources  # pylint: disable=g-import-not-at-top
  kw = dict(image_size=d.image_size or None, label_key=d.label_key or None,
            classes=tuple(d.classes))
  train = sources.open_split(d.name, d.train_split, d.data_dir or None, **kw)
  if d.get("label_noise") is not None:  # noisy `label`, true `clean_label`
    train = label_noise.apply(train, d.label_noise)
  evals = sources.open_split(d.name, d.eval_split, d.data_dir or None, **kw)
  if d.get("category_discovery") is not None:  # old/new, `labelled` mask
    train, evals = category_discovery.apply(train, evals,
                                            d.category_discovery)
  example = {d.input_key: jax.ShapeDtypeStruct(
      (1, *train.image_shape), np.uint8)}
  return train, evals, None, example, len(train), train.num_classes


def setup(config: mlc.ConfigDict,
          method: method_lib.Method | None = None, **kwargs) -> Setup:
  """Opens the config's data and builds the harness on it.

  Args:
    config: a locked experiment config.
    method: a `Method` to use instead of the registered
      `config.method.name` (a notebook's fork); its hyperparameters are
      still read from `config.method[config.method.name]`.
    **kwargs: passed to `build` (`extras` for the method's init).
  """
  train, evals, gen, example, n, classes = open_data(config)
  run = run_info(config, n, classes)
  return build(config, run, example, train, evals, generator=gen,
               method=method, **kwargs)


def _sampler(gen: procedural.Generator, batch_size: int,
             mesh: jax.sharding.Mesh) -> Callable[[jax.Array], Batch]:
  split = sharding_lib.batch_sharded(mesh)

  def sample(rng):
    batch = gen.sample(rng, batch_size)
    return jax.tree.map(
        lambda x: jax.lax.with_sharding_constraint(x, split), batch)
  return sample


def build(config: mlc.ConfigDict, run: method_lib.RunInfo,
          example: dict[str, Any], train_source: Any = None,
          eval_source: Any = None, *,
          generator: procedural.Generator | None = None,
          method: method_lib.Method | None = None,
          extras: Any = None, eval_keys: tuple[str, ...] = ("logits",)
          ) -> Setup:
  """Builds model, method, optimizer and the jitted steps for `run`.

  Args:
    config: a locked experiment config.
    run: the run's shape facts (see `run_info`).
    example: one example's model-input arrays `[1, ...]` by batch key
      (`jax.ShapeDtypeStruct`s or arrays), for the model's init.
    train_source, eval_source: the datasets (None when driving the step
      with generated batches).
    generator: a procedural source (batches drawn inside the step).
    method: overrides the registered method (see `setup`).
    extras: host values handed to the method's init as `ctx.extras`
      (in addition to `Method.load`'s), e.g. TTA's clean images.
    eval_keys: model outputs the eval step returns by default (an
      evaluator may ask for others: `eval_step(..., output_keys=(...))`).
  """
  mesh = sharding_lib.make_mesh()
  sharding_lib.check_batch_size(config.train.batch_size, "train.batch_size")
  sharding_lib.check_batch_size(config.train.eval_batch_size,
                                "train.eval_batch_size")
  try:
    model = models.get_model(config.model.name, run.num_classes,
                             dtype=config.model.dtype,
                             **config.model.kwargs.to_dict())
  except TypeError as e:
    raise ValueError(
        f"config.model.kwargs={config.model.kwargs.to_dict()} do not fit "
        f"model {config.model.name!r} ({e}); change or clear them") from e
  method_cfg = config.method[config.method.name].to_dict()
  if method is None:
    method = method_lib.get_method(config.method.name, method_cfg)
  if method.load is not None:
    loaded = method.load(method_cfg, run)
    extras = loaded if extras is None else {"protocol": extras,
                                            "method": loaded}
  preprocess = preprocess_lib.make(config.data)
  # The model input may be a pytree (a dict of arrays: a mesh pair).
  dummy = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype),
                       example[config.data.input_key])
  dummy_input = preprocess({config.data.input_key: dummy}, None)

  def init_fn(rng, params=None, model_state=None):
    r_params, r_dropout, r_method = jax.random.split(rng, 3)
    variables = dict(model.init({"params": r_params, "dropout": r_dropout},
                                dummy_input, train=False))
    init_params = variables.pop("params")
    params = init_params if params is None else params
    model_state = variables if model_state is None else model_state
    ctx = method_lib.InitContext(
        run, params, model_state, method_cfg, model, extras,
        sample=None if generator is None else generator.sample,
        init_params=lambda r: model.init({"params": r, "dropout": r},
                                         dummy_input, train=False)["params"],
        example_input=dummy_input)
    out = (method.init or method_lib.stateless_init)(r_method, ctx)
    if isinstance(out, method_lib.InitOutput):
      params = params if out.params is None else out.params
      model_state = model_state if out.model_state is None else (
          out.model_state)
      out = out.method_state
    return params, model_state, out

  rng = jax.random.PRNGKey(config.seed)
  abstract_parts = jax.eval_shape(init_fn, rng)
  trainable = method_lib.trainable_mask(abstract_parts[0], method.trainable)
  tx = optim.masked_optimizer(optim.make_optimizer(
      config.optim.name, nesterov=config.optim.nesterov,
      weight_decay_mask=config.optim.weight_decay_mask,
      clip_grad_norm=config.optim.clip_grad_norm > 0,
      plain_param_names=tuple(config.optim.plain_param_names)), trainable)

  def state_fn(rng, params=None, model_state=None):
    params, model_state, method_state = init_fn(rng, params, model_state)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      opt_state=tx.init(params), model_state=model_state,
                      method_state=method_state, rng=rng)

  abstract = jax.eval_shape(state_fn, rng)
  state_sharding = sharding_lib.state_shardings(
      abstract, mesh, config.train.get("param_sharding", "replicated"))
  abstract = jax.tree.map(
      lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
      abstract, state_sharding)
  init_jit = jax.jit(state_fn, out_shardings=state_sharding)
  parts = train_step_lib.StepParts(
      model=model, method=method, tx=tx, schedule_name=config.schedule.name,
      run=run, preprocess=preprocess, normalize=preprocess.normalize,
      trainable=trainable,
      sample=(None if generator is None else
              _sampler(generator, config.train.batch_size, mesh)),
      micro_batches=config.train.micro_batches,
      log_norms=config.train.log_norms)
  hparams = sharding_lib.replicate(build_hparams(config, method, run), mesh)
  return Setup(
      config=config, mesh=mesh, train_source=train_source,
      eval_source=eval_source, generator=generator, run=run, model=model,
      method=method, parts=parts, hparams=hparams, abstract_state=abstract,
      init_state=lambda params=None, model_state=None: init_jit(
          rng, params, model_state),
      train_step=train_step_lib.make_train_step(parts, mesh, state_sharding),
      eval_step=train_step_lib.make_eval_step(parts, mesh, eval_keys))

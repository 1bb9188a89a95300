"""Building the harness from a config: model, method, optimizer, steps.

`setup(config)` opens the datasets and calls `build`, which needs only the
run's shape facts (`RunInfo`, image shape), so benchmarks and tests can build
the exact train step every experiment uses on generated data.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np

from common import config as config_lib
from common import method as method_lib
from common import metrics as metrics_lib
from common import models
from common import optim
from common import sharding as sharding_lib
from common import train_step as train_step_lib
from common.data import loader as loader_lib
from common.train_state import TrainState


@dataclasses.dataclass
class Setup:
  """Everything `train` builds from a config (also used by tests/benchmarks)."""
  config: mlc.ConfigDict
  mesh: jax.sharding.Mesh
  train_source: Any
  eval_source: Any
  run: method_lib.RunInfo
  model: Any
  method: method_lib.Method
  input_spec: train_step_lib.InputSpec
  hparams: dict[str, Any]
  abstract_state: TrainState
  init_state: Callable[[], TrainState]
  train_step: Callable
  eval_step: Callable


def build_hparams(config: mlc.ConfigDict, method: method_lib.Method,
                  run: method_lib.RunInfo) -> dict[str, Any]:
  """The traced-hyperparameter pytree passed to every step (host values)."""
  method_cfg = config.method[config.method.name].to_dict()
  hp = {
      "method": method.hparams(method_cfg, run),
      "optim": optim.optimizer_hparams(config.optim),
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
      total_steps=total, global_batch_size=batch)


def setup(config: mlc.ConfigDict,
          method: method_lib.Method | None = None) -> Setup:
  """Opens the config's datasets and builds the harness on them.

  Args:
    config: a locked experiment config.
    method: a `Method` to use instead of the registered
      `config.method.name` (e.g. a notebook's fork); its hyperparameters are
      still read from `config.method[config.method.name]`.
  """
  config_lib.validate_training(config)
  from common.data import sources  # pylint: disable=g-import-not-at-top
  data_dir = config.data.data_dir or None
  size = config.data.image_size or None
  label_key = config.data.label_key or None
  classes = tuple(config.data.classes)
  train_source = sources.open_split(config.data.name, config.data.train_split,
                                    data_dir, image_size=size,
                                    label_key=label_key, classes=classes)
  eval_source = sources.open_split(config.data.name, config.data.eval_split,
                                   data_dir, image_size=size,
                                   label_key=label_key, classes=classes)
  run = run_info(config, len(train_source), train_source.num_classes)
  return build(config, run, tuple(train_source.image_shape), train_source,
               eval_source, method=method)


def build(config: mlc.ConfigDict, run: method_lib.RunInfo,
          image_shape: tuple[int, ...], train_source: Any = None,
          eval_source: Any = None,
          method: method_lib.Method | None = None) -> Setup:
  """Builds model, method, optimizer and the jitted steps for `run`.

  Args:
    config: a locked experiment config.
    run: the run's shape facts (see `run_info`).
    image_shape: `(h, w, c)` of one input image.
    train_source, eval_source: the datasets (None when driving the step
      with generated batches, as benchmarks do).
    method: overrides the registered method (see `setup`).
  """
  config_lib.validate_training(config)
  mesh = sharding_lib.make_mesh()
  sharding_lib.check_batch_size(config.train.batch_size)
  sharding_lib.check_batch_size(config.train.eval_batch_size)
  try:
    model = models.get_model(config.model.name, run.num_classes,
                             dtype=config.model.dtype,
                             **config.model.kwargs.to_dict())
  except TypeError as e:
    raise ValueError(
        f"config.model.kwargs={config.model.kwargs.to_dict()} do not fit "
        f"model {config.model.name!r} ({e}); change or clear them, e.g. "
        f"--config.model.kwargs='{{}}' in Python") from e
  if method is None:
    method = method_lib.get_method(config.method.name, model.apply)
  tx = optim.make_optimizer(
      config.optim.name, nesterov=config.optim.nesterov,
      weight_decay_mask=config.optim.weight_decay_mask,
      clip_grad_norm=config.optim.clip_grad_norm > 0)
  input_spec = train_step_lib.InputSpec(
      mean=tuple(config.data.mean), std=tuple(config.data.std),
      crop_padding=config.data.crop_padding, flip=config.data.flip)
  method_cfg = config.method[config.method.name].to_dict()

  def init_fn(rng):
    r_params, r_dropout, r_method = jax.random.split(rng, 3)
    dummy = jnp.zeros((1, *image_shape), jnp.float32)
    variables = model.init({"params": r_params, "dropout": r_dropout},
                           dummy, train=False)
    variables = dict(variables)
    params = variables.pop("params")
    ctx = method_lib.InitContext(run, params, variables, method_cfg)
    return TrainState(
        step=jnp.zeros((), jnp.int32), params=params,
        opt_state=tx.init(params), model_state=variables,
        method_state=method.init(r_method, ctx), rng=rng)

  rng = jax.random.PRNGKey(config.seed)
  repl = sharding_lib.replicated(mesh)
  abstract = jax.eval_shape(init_fn, rng)
  state_sharding = jax.tree.map(lambda _: repl, abstract)
  abstract = jax.tree.map(
      lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=repl),
      abstract)
  init_jit = jax.jit(init_fn, out_shardings=state_sharding)
  hparams = sharding_lib.replicate(build_hparams(config, method, run), mesh)
  return Setup(
      config=config, mesh=mesh, train_source=train_source,
      eval_source=eval_source, run=run, model=model, method=method,
      input_spec=input_spec, hparams=hparams, abstract_state=abstract,
      init_state=lambda: init_jit(rng),
      train_step=train_step_lib.make_train_step(
          model, method, tx, config.schedule.name, input_spec, mesh,
          state_sharding, log_norms=config.train.log_norms),
      eval_step=train_step_lib.make_eval_step(model, input_spec, mesh))


def evaluate(s: Setup, state: TrainState) -> dict[str, float]:
  """The eval metrics of `state`: `config.evaluator`'s, else classification.

  An evaluator module provides `evaluate(setup, state) -> dict[str, float]`
  (e.g. disentanglement metrics of an autoencoder's latents).
  """
  if s.config.evaluator:
    try:
      module = importlib.import_module(s.config.evaluator)
    except ModuleNotFoundError as e:
      raise ValueError(f"config.evaluator={s.config.evaluator!r} is not an "
                       f"importable module ({e})") from e
    if not hasattr(module, "evaluate"):
      raise ValueError(f"config.evaluator module {s.config.evaluator!r} has "
                       "no evaluate(setup, state) function")
    return module.evaluate(s, state)
  return classification_eval(s, state)


def classification_eval(s: Setup, state: TrainState) -> dict[str, float]:
  """Classification metrics of `state` on the whole eval split."""
  logits, labels, masks = [], [], []
  for local in loader_lib.eval_batches(
      s.eval_source, s.config.train.eval_batch_size,
      jax.process_index(), jax.process_count()):
    batch = sharding_lib.shard_batch(local, s.mesh)
    logits.append(sharding_lib.gather_to_host(s.eval_step(state, batch)))
    labels.append(sharding_lib.gather_to_host(batch["label"]))
    masks.append(sharding_lib.gather_to_host(batch["mask"]))
  return metrics_lib.classification_metrics(
      np.concatenate(logits), np.concatenate(labels), np.concatenate(masks))



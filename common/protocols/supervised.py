"""The supervised protocol: train one model with the shared loop.

`train(config, workdir)` runs one configuration end to end:

* builds data (a TFDS split or a procedural generator), model, method and
  optimizer, and the one jitted train step (`common.protocols.build`);
* resumes from the newest checkpoint in `workdir` (a checkpoint or workdir
  that cannot be used raises, never a silent fresh start; a finished run is
  returned from its `summary.json`);
* logs one step late (fetching step t's metrics while step t+1 runs) and
  aborts on a non-finite metric with the step and the metric's name;
* evaluates (`config.eval.name`) every `train.eval_every_epochs` epochs and
  at the end;
* checkpoints every `train.checkpoint_every_steps`, at the end, and on
  SIGTERM (TPU preemption), then returns with status "preempted".
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Sequence

from absl import logging
import jax
import ml_collections as mlc
import numpy as np
import tqdm

from common import config as config_lib
from common import models
from common import registry
from common.core import checkpoint as checkpoint_lib
from common.core import logging_utils
from common.core import method as method_lib
from common.data import category_discovery
from common.data import label_noise
from common.data import procedural
from common.eval import evaluators
from common.protocols import Protocol
from common.protocols import RunResult
from common.protocols import build
from common.protocols import register_protocol
from common.protocols import runs

setup = build.setup


class NonFiniteError(FloatingPointError):
  """A training metric became NaN or infinite."""


def base_config() -> mlc.ConfigDict:
  """Every key the supervised protocol reads, with defaults."""
  c = config_lib.core_config()
  c.protocol = "supervised"
  c.data = mlc.ConfigDict(dict(
      name="digits",
      # "tfds", "generator" (common.data.procedural) or "text" (packed
      # token rows, common.data.text; settings in data.kwargs)
      source="tfds",
      data_dir="", train_split="train", eval_split="test",
      image_size=0,            # >0: host-resize variable-size images
      label_key="",            # "" = the dataset's supervised label
      input_key="image",       # the batch entry the model reads
      preprocess="image",      # common.data.preprocess: "image" or "none"
      crop_padding=0, flip=False,
      mean=(0.5,), std=(0.5,),
      # Label ids to keep in every split, relabelled 0..k-1 in this order
      # (e.g. known classes of an open-set protocol); () keeps all.
      classes=()))
  c.data.kwargs = mlc.ConfigDict()    # a generator's settings
  # Synthetic label noise on the training split (common.data.label_noise):
  # kind, rate, seed, map / permutation.
  c.data.label_noise = label_noise.default_config()
  c.model = mlc.ConfigDict(dict(name="small_cnn", dtype="float32"))
  c.model.kwargs = mlc.ConfigDict()   # extra model constructor arguments
  c.method = mlc.ConfigDict(dict(name="cross_entropy"))
  c.method.cross_entropy = mlc.ConfigDict(dict(label_smoothing=0.0))
  c.optim = mlc.ConfigDict(dict(
      name="sgd", momentum=0.9, nesterov=True, weight_decay=5e-4,
      weight_decay_mask="all", b1=0.9, b2=0.999, eps=1e-8,
      clip_grad_norm=0.0,
      clip_value=1.0,          # element-wise clip (adamw_split only)
      plain_param_names=("bias",)))   # adamw_split's undecayed leaves
  c.schedule = mlc.ConfigDict(dict(
      name="piecewise", learning_rate=0.1, warmup_epochs=0.0,
      boundaries_epochs=(), decay_factor=0.1))
  c.train = mlc.ConfigDict(dict(
      batch_size=128,          # global, over all devices and hosts
      num_epochs=10,
      steps=-1,                # >0 overrides num_epochs
      micro_batches=1,         # gradient accumulation
      # "replicated" (data parallel) or "fsdp": parameters and optimizer
      # state split over the data axis (common.core.sharding).
      param_sharding="replicated",
      eval_batch_size=512,
      log_every_steps=50,
      eval_every_epochs=1,     # 0: only at the end
      checkpoint_every_steps=1000,
      keep_checkpoints=2,
      # Multi-host: every process stops at the same step after a SIGTERM
      # reaches any of them; their flags are compared this often.
      sync_preemption_every_steps=10,
      # Global grad/param norms in the metrics: one reduction per leaf,
      # ~7% of a PreAct-ResNet-18 step at batch 128 on an H200.
      log_norms=False,
      tensorboard=True))
  c.eval = mlc.ConfigDict(dict(name="classification"))
  return c


RULES = {
    "data.source": config_lib.one_of("tfds", "generator", "text"),
    "data.crop_padding": config_lib.at_least(0, integer=True),
    "data.image_size": config_lib.at_least(0, integer=True),
    "model.dtype": config_lib.one_of("float32", "bfloat16", "float16"),
    "optim.name": config_lib.one_of("sgd", "adamw", "adamw_split", "sgld"),
    "optim.momentum": config_lib.between(0.0, 1.0),
    "optim.weight_decay": config_lib.at_least(0.0),
    "optim.weight_decay_mask": config_lib.one_of("all", "kernels"),
    "optim.b1": config_lib.between(0.0, 1.0),
    "optim.b2": config_lib.between(0.0, 1.0),
    "optim.eps": config_lib.greater_than(0.0),
    "optim.clip_grad_norm": config_lib.at_least(0.0),
    "optim.clip_value": config_lib.greater_than(0.0),
    "schedule.name": config_lib.one_of("constant", "piecewise", "cosine"),
    "schedule.learning_rate": config_lib.at_least(0.0),
    "schedule.warmup_epochs": config_lib.at_least(0.0),
    "schedule.boundaries_epochs": config_lib.each(config_lib.at_least(0.0)),
    "schedule.decay_factor": config_lib.at_least(0.0),
    "train.batch_size": config_lib.at_least(1, integer=True),
    "train.micro_batches": config_lib.at_least(1, integer=True),
    "train.param_sharding": config_lib.one_of("replicated", "fsdp"),
    "train.eval_batch_size": config_lib.at_least(1, integer=True),
    "train.log_every_steps": config_lib.at_least(1, integer=True),
    "train.eval_every_epochs": config_lib.at_least(0, integer=True),
    "train.checkpoint_every_steps": config_lib.at_least(1, integer=True),
    "train.keep_checkpoints": config_lib.at_least(1, integer=True),
    "train.sync_preemption_every_steps": config_lib.at_least(1,
                                                             integer=True),
    "smoke.steps": config_lib.at_least(1, integer=True),
}


def validate(config: mlc.ConfigDict) -> None:
  """Ranges and cross-field checks of the sections the train step reads."""
  config_lib.check_rules(config, RULES)
  name = config.method.name
  if name not in method_lib.method_names():
    raise config_lib.ConfigError(
        f"config.method.name={name!r} is not a registered method; "
        f"registered: {method_lib.method_names()}")
  if name not in config.method:
    raise config_lib.ConfigError(
        f"config.method has no section for {name!r}; add config.method."
        f"{name} = ConfigDict(...) with its hyperparameters")
  method = method_lib.get_method(name, config.method[name].to_dict())
  config_lib.check_rules(config, {f"method.{name}.{k}": r for k, r in (
      method.rules or {}).items()})
  if config.train.num_epochs <= 0 and config.train.steps <= 0:
    raise config_lib.ConfigError("set train.num_epochs > 0 or "
                                 "train.steps > 0")
  if config.train.batch_size % config.train.micro_batches:
    raise config_lib.ConfigError(
        f"train.batch_size={config.train.batch_size} is not divisible by "
        f"train.micro_batches={config.train.micro_batches}")
  if config.model.name not in models.MODELS:
    raise config_lib.ConfigError(
        f"config.model.name={config.model.name!r} is not a registered model"
        f"{registry.suggestion(config.model.name, models.model_names())}; "
        f"registered: {models.model_names()}")
  if config.eval.name not in evaluators.EVALUATORS:
    raise config_lib.ConfigError(
        f"config.eval.name={config.eval.name!r} is not a registered "
        f"evaluator; registered: {evaluators.EVALUATORS.names()}")
  # Training-split options of TFDS sources (category_discovery is opt-in).
  for key, module in (("label_noise", label_noise),
                      ("category_discovery", category_discovery)):
    if key in config.data:
      module.check(config.data[key])
      if config.data[key].kind != "none" and config.data.source != "tfds":
        raise config_lib.ConfigError(
            f"config.data.{key} applies to data.source='tfds' only, not "
            f"{config.data.source!r}")
  if config.data.source == "text":
    from common.data.text import source as text_source  # pylint: disable=g-import-not-at-top
    text_source.settings(config.data)
  if config.data.source == "generator":
    # The generator's factory checks its settings (`data.kwargs`), so a bad
    # value fails here, before any run of a study starts.
    try:
      procedural.make(config)
    except config_lib.ConfigError:
      raise
    except FileNotFoundError:
      pass     # data not on this machine: the run names the missing file
    except (ValueError, TypeError, KeyError) as e:
      raise config_lib.ConfigError(str(e)) from e


def evaluate(s: build.Setup, state: Any) -> dict[str, float]:
  """The eval metrics of `state` from `config.eval.name`'s evaluator."""
  return {k: float(v) for k, v in evaluators.get_evaluator(
      s.config.eval.name)(s, state).items()}


def _check_finite(step: int, metrics: dict[str, np.ndarray],
                  checkpoint_dir: str, last_saved: int | None) -> None:
  bad = [k for k, v in metrics.items() if not np.all(np.isfinite(v))]
  if bad:
    name = "loss" if "loss" in bad else bad[0]
    raise NonFiniteError(
        f"non-finite training metric {name!r} = {metrics[name]} at step "
        f"{step} (all non-finite: {bad}). Last good checkpoint: "
        f"{'none' if last_saved is None else f'step {last_saved}'} in "
        f"{checkpoint_dir}. Lower the learning rate or check the data.")


def train(config: mlc.ConfigDict, workdir: str, *,
          hooks: Sequence[Callable[[int], None]] = (),
          method: method_lib.Method | None = None,
          show_progress: bool = True, desc: str = "",
          initial: tuple[Any, Any] | None = None,
          extras: Any = None) -> RunResult:
  """Trains `config` in `workdir` (resuming if it holds a checkpoint).

  Args:
    config: a locked experiment config.
    workdir: output folder (config.json, metrics.jsonl, tensorboard/,
      checkpoints/, summary.json).
    hooks: called with the number of finished steps after each step.
    method: a `Method` replacing the registered one (forks).
    show_progress: show a tqdm bar with ETA and examples/s.
    desc: progress-bar label.
    initial: `(params, model_state)` to start from instead of the model's
      init (fine-tuning another run's result; the optimizer starts fresh
      and the method's `init` sees them as `ctx.params`). Ignored when
      the workdir holds a checkpoint.
    extras: host values for the method's `init` (`ctx.extras`): what a
      protocol hands on from earlier runs (frozen teachers of `distill`, a
      discriminator or adapted parameters of `staged`, the previous stage
      of `continual_gcd`); a resumed run must pass the same ones (they fix
      the method state's shapes).

  Returns:
    The run's result (final metrics, eval history, status).
  """
  t_start = time.time()
  cached = runs.begin(config, workdir, validate)
  if cached is not None:
    return cached
  s = build.setup(config, method=method, extras=extras)
  ckpt = checkpoint_lib.Checkpointer(workdir, config.train.keep_checkpoints)
  runs.check_same_config(workdir, config, ckpt.latest_step() is not None)
  state = ckpt.restore_latest(s.abstract_state)
  log_path = os.path.join(workdir, "metrics.jsonl")
  if state is None:
    state = s.init_state(*(initial or ()))
    if jax.process_index() == 0 and os.path.exists(log_path):
      os.remove(log_path)
    runs.write_config(workdir, config)
  elif jax.process_index() == 0:
    logging_utils.truncate_jsonl(log_path, int(jax.device_get(state.step)))
  start = int(jax.device_get(state.step))
  total, spe = s.run.total_steps, s.run.steps_per_epoch
  writer = logging_utils.MetricWriter(workdir, config.train.tensorboard)
  history = runs.eval_history(workdir)
  every_eval = config.train.eval_every_epochs * spe
  last_saved = ckpt.latest_step()
  batch_size = config.train.batch_size
  bar = tqdm.tqdm(total=total, initial=start, desc=desc or config.experiment,
                  unit="step", disable=not show_progress, dynamic_ncols=True,
                  smoothing=0.1)
  pending = None
  window = (start, time.time())
  status = "finished"

  def drain():
    """Fetches, checks and logs the previous step's metrics."""
    nonlocal pending, window
    if pending is None:
      return
    done, metrics = pending
    pending = None
    metrics = jax.device_get(metrics)
    _check_finite(done, metrics, ckpt.directory, last_saved)
    if done % config.train.log_every_steps == 0 or done == total:
      now = time.time()
      rate = (done - window[0]) * batch_size / max(now - window[1], 1e-9)
      window = (done, now)
      writer.write(done, "train", {**metrics, "examples_per_sec": rate})
      bar.set_postfix(loss=f"{float(metrics['loss']):.4f}",
                      ex_s=f"{rate:,.0f}", refresh=False)

  def run_eval(done):
    result = evaluate(s, state)
    record = {"epoch": done / spe, **result}
    writer.write(done, "eval", record)
    history.append({"step": done, "split": "eval", **record})
    return result

  batches = s.train_batches(start)
  try:
    with runs.Preemption(
        config.train.sync_preemption_every_steps) as preemption:
      for step in range(start, total):
        state, metrics, _ = s.train_step(state, next(batches), s.hparams)
        drain()
        pending = (step + 1, metrics)
        bar.update(1)
        for hook in hooks:
          hook(step + 1)
        done = step + 1
        if every_eval and done % every_eval == 0 and done != total:
          drain()
          run_eval(done)
        if done % config.train.checkpoint_every_steps == 0:
          drain()
          ckpt.save(state)
          last_saved = done
        if preemption.agreed(done) and done != total:
          drain()
          ckpt.save(state)
          status = "preempted"
          logging.warning("SIGTERM: saved step %d to %s; exiting", done,
                          ckpt.directory)
          break
      drain()
    final = {}
    if status == "finished":
      # Always from the final state: a run killed after its last
      # checkpoint and before this point evaluates again on rerun.
      final = run_eval(total)
      ckpt.save(state)
  finally:
    bar.close()
    batches.close()
    writer.close()
    ckpt.close()
  result = RunResult(status=status, workdir=workdir,
                     steps=int(jax.device_get(state.step)), final=final,
                     history=history, seconds=time.time() - t_start)
  if status == "finished":
    runs.write_summary(workdir, config, result)
  return result


def restore(config: mlc.ConfigDict, workdir: str, extras: Any = None
            ) -> tuple[build.Setup, Any]:
  """`(setup, state)` of the newest checkpoint of the run in `workdir`
  (figures and analyses of a finished run; `extras` as the run had them)."""
  s = build.setup(config, extras=extras)
  ckpt = checkpoint_lib.Checkpointer(workdir, config.train.keep_checkpoints)
  try:
    runs.check_same_config(workdir, config, ckpt.latest_step() is not None)
    state = ckpt.restore_latest(s.abstract_state)
  finally:
    ckpt.close()
  if state is None:
    raise checkpoint_lib.CheckpointError(f"no checkpoint in {workdir}")
  return s, state


def smoke(config: mlc.ConfigDict, workdir: str) -> None:
  """`config.smoke.steps` steps of the config, then the final evaluation."""
  config = config_lib.apply_overrides(config, {
      "train.steps": config.smoke.steps, "train.tensorboard": False,
      "train.eval_every_epochs": 0})
  result = train(config, workdir, show_progress=False)
  runs.check_smoke(result, config.smoke.steps)


def run(config: mlc.ConfigDict, workdir: str, show_progress: bool = True,
        desc: str = "") -> RunResult:
  return train(config, workdir, show_progress=show_progress, desc=desc)


@register_protocol("supervised")
def protocol() -> Protocol:
  return Protocol(name="supervised", base_config=base_config,
                  validate=validate, run=run, smoke=smoke)

"""Configs: the harness's base ConfigDict, loading, overrides and checks.

Every experiment's `config.py` starts from `base_config()` and changes
values; the result is locked, so a misspelt key fails with the list of valid
keys and a wrong type fails with the expected type (ml_collections' own
messages, which we keep).
"""

from __future__ import annotations

import ast
import importlib.util
import os
from typing import Any, Iterable

import ml_collections as mlc

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def base_config() -> mlc.ConfigDict:
  """All keys the harness reads, with defaults; experiments override."""
  c = mlc.ConfigDict()
  c.experiment = ""            # paper id, e.g. "ps_kd"
  # Module with the experiment's own study runner (see common/runners.py),
  # e.g. "common.adapt_study" or "experiments.qarl.run"; "" = the shared
  # classification study (common/study.py) over `common.loop.train`.
  c.runner = ""
  # Module with `evaluate(setup, state) -> dict[str, float]` replacing the
  # classification metrics of the loop's evaluations (e.g. disentanglement
  # metrics of an autoencoder); "" = `common.harness.classification_eval`.
  c.evaluator = ""
  c.seed = 0
  c.data = mlc.ConfigDict(dict(
      name="digits", data_dir="", train_split="train", eval_split="test",
      image_size=0,            # >0: host-resize variable-size images
      label_key="",            # "" = the dataset's supervised label
      crop_padding=0, flip=False,
      mean=(0.5,), std=(0.5,),
      # Label ids to keep in every split, relabelled 0..k-1 in this order
      # (e.g. known classes of an open-set protocol); () keeps all.
      classes=()))
  c.model = mlc.ConfigDict(dict(name="small_cnn", dtype="float32"))
  c.model.kwargs = mlc.ConfigDict()   # extra model constructor arguments
  c.method = mlc.ConfigDict(dict(name="cross_entropy"))
  c.method.cross_entropy = mlc.ConfigDict(dict(label_smoothing=0.0))
  c.optim = mlc.ConfigDict(dict(
      name="sgd", momentum=0.9, nesterov=True, weight_decay=5e-4,
      weight_decay_mask="all", b1=0.9, b2=0.999, eps=1e-8,
      clip_grad_norm=0.0,
      clip_value=1.0))         # element-wise clip (adamw_split only)
  c.schedule = mlc.ConfigDict(dict(
      name="piecewise", learning_rate=0.1, warmup_epochs=0.0,
      boundaries_epochs=(), decay_factor=0.1))
  c.train = mlc.ConfigDict(dict(
      batch_size=128,          # global, over all devices and hosts
      num_epochs=10,
      steps=-1,                # >0 overrides num_epochs
      eval_batch_size=512,
      log_every_steps=50,
      eval_every_epochs=1,     # 0: only at the end
      checkpoint_every_steps=1000,
      keep_checkpoints=2,
      # Global grad/param norms in the metrics: one reduction per leaf,
      # ~7% of a PreAct-ResNet-18 step at batch 128 on an H200.
      log_norms=False,
      tensorboard=True))
  # A study runs several arms (label -> overrides) over several seeds.
  c.study = mlc.ConfigDict(dict(seeds=(0,), metrics=("error", "nll", "ece")))
  c.study.arms = mlc.ConfigDict()
  c.study.paper = mlc.ConfigDict()    # arm label -> {metric: paper's number}
  c.study.paper_source = ""
  c.smoke = mlc.ConfigDict(dict(enabled=False, steps=3))
  return c


def load_config(spec: str) -> mlc.ConfigDict:
  """Loads `path/to/config.py[:arg]` like absl's `--config` flag, locked."""
  path, _, arg = spec.partition(":")
  if not os.path.isabs(path) and not os.path.exists(path):
    path = os.path.join(REPO_ROOT, path)
  if not os.path.exists(path):
    raise FileNotFoundError(f"config file {path!r} does not exist")
  module_spec = importlib.util.spec_from_file_location("_regjax_config", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  config = module.get_config(arg) if arg else module.get_config()
  config.lock()
  return config


def parse_override(text: str) -> tuple[str, str]:
  key, sep, value = text.partition("=")
  if not sep or not key.strip():
    raise ValueError(f"override {text!r} must look like key.path=value")
  return key.strip(), value.strip()


def _coerce(current: Any, raw: str, key: str) -> Any:
  """Parses `raw` into the type of `current`, or fails saying both."""
  if isinstance(current, str):
    return raw
  try:
    value = ast.literal_eval(raw)
  except (ValueError, SyntaxError):
    value = raw
  if isinstance(current, bool):
    if isinstance(value, bool):
      return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
      return value.lower() == "true"
  elif isinstance(current, int) and isinstance(value, int) and not isinstance(
      value, bool):
    return value
  elif isinstance(current, float) and isinstance(value, (int, float)) and (
      not isinstance(value, bool)):
    return float(value)
  elif isinstance(current, tuple):
    if isinstance(value, (list, tuple)):
      return tuple(value)
    return (value,)
  elif current is None:
    return value
  raise TypeError(f"config key {key!r} expects {type(current).__name__} "
                  f"(current value {current!r}); got {raw!r}")


def apply_overrides(config: mlc.ConfigDict,
                    overrides: Iterable[str] | dict[str, Any]
                    ) -> mlc.ConfigDict:
  """Returns a locked copy of `config` with `key.path=value` overrides.

  Unknown keys raise with the valid keys at that level (ml_collections'
  message); values are parsed to the type of the field they replace.
  """
  config = config.copy_and_resolve_references()  # deep copy
  config.lock()
  items = (overrides.items() if isinstance(overrides, dict)
           else (parse_override(o) for o in overrides))
  for key, raw in items:
    node = config
    *parents, leaf = key.split(".")
    for part in parents:
      node = getattr(node, part)
    current = getattr(node, leaf)  # AttributeError lists the valid keys
    value = _coerce(current, raw, key) if isinstance(raw, str) else raw
    setattr(node, leaf, value)
  return config


def validate(config: mlc.ConfigDict) -> None:
  """Cross-field checks that the type system of ConfigDict cannot do.

  A config with its own `runner` is checked by the runner's `validate`
  (which may call `validate_training` for the harness's sections).
  """
  if config.runner:
    from common import runners  # pylint: disable=g-import-not-at-top
    runner = runners.get_runner(config)
    if hasattr(runner, "validate"):
      runner.validate(config)
      return
  validate_training(config)


def validate_training(config: mlc.ConfigDict) -> None:
  """Checks of the sections the shared train step reads."""
  from common import method as method_lib  # pylint: disable=g-import-not-at-top
  name = config.method.name
  if name not in method_lib.method_names():
    raise ValueError(f"config.method.name={name!r} is not a registered "
                     f"method; registered: {method_lib.method_names()}")
  if name not in config.method:
    raise ValueError(f"config.method has no section for {name!r}; add "
                     f"config.method.{name} = ConfigDict(...) with its "
                     f"hyperparameters")
  if config.train.batch_size <= 0 or config.train.eval_batch_size <= 0:
    raise ValueError("train.batch_size and train.eval_batch_size must be > 0")
  if config.train.num_epochs <= 0 and config.train.steps <= 0:
    raise ValueError("set train.num_epochs > 0 or train.steps > 0")
  if len(config.data.mean) != len(config.data.std):
    raise ValueError("data.mean and data.std must have the same length")

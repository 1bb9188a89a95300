"""Configs: loading, typed overrides, declared ranges and fingerprints.

This module is a leaf: it imports nothing else from `common`, so every layer
may use it. The *schemas* live with the protocols that read them: a protocol's
`base_config()` (for example `common.protocols.supervised.base_config`) holds
exactly the keys it reads, so a key that no part of the run reads does not
exist and an override of it fails. Experiment configs start from their
protocol's base and are locked: a misspelt key fails with the valid keys and
a suggestion, a wrong type with the expected type, and a value outside its
declared range with the field, the value and what is allowed.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import hashlib
import importlib.util
import json
import math
import os
from typing import Any, Callable, Iterable, Mapping

import ml_collections as mlc

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ConfigError(ValueError):
  """A config, override or flag is not valid; the message says why."""


def core_config() -> mlc.ConfigDict:
  """The keys every protocol has: identity, seed, study and smoke."""
  c = mlc.ConfigDict()
  c.experiment = ""            # paper id, e.g. "ps_kd"
  c.protocol = "supervised"    # a registered protocol (common.protocols)
  c.seed = 0
  # A study runs every arm (label -> comma-separated overrides) over seeds.
  c.study = mlc.ConfigDict(dict(seeds=(0,), metrics=("error", "nll", "ece")))
  c.study.arms = mlc.ConfigDict()
  c.study.metric_labels = mlc.ConfigDict()   # metric -> column label
  c.study.formats = mlc.ConfigDict()   # metric -> format spec, e.g. ".4f"
  c.study.paper = mlc.ConfigDict()    # arm label -> {metric: paper's number}
  c.study.paper_source = ""
  c.study.plots = ()           # eval metrics plotted against epoch
  c.study.tables = ()          # extra tables (see common.study.tables)
  c.study.artifacts = ""       # "module:function(config, workdir, runs)"
  c.study.name = "results"     # results/<name>.md in the experiment folder
  c.smoke = mlc.ConfigDict(dict(enabled=False, steps=3))
  return c


# Keys that may change between a run and its resumption, and that do not
# enter the fingerprint of a result (logging, paths, study bookkeeping, and
# parameter placement, which like the device count changes numbers only up
# to summation order).
RESUME_MAY_CHANGE = ("train.log_every_steps", "train.checkpoint_every_steps",
                     "train.checkpoint_every_chunks",
                     "train.keep_checkpoints", "train.tensorboard",
                     "train.log_norms", "train.eval_batch_size",
                     "train.sync_preemption_every_steps",
                     "train.param_sharding",
                     "data.data_dir", "study.", "smoke.")


# ------------------------------------------------------------------ loading
def load_config(spec: str) -> mlc.ConfigDict:
  """Loads `path/to/config.py[:variant]` like absl's `--config`, locked."""
  path, _, arg = spec.partition(":")
  if not os.path.isabs(path) and not os.path.exists(path):
    path = os.path.join(REPO_ROOT, path)
  if not os.path.exists(path):
    raise ConfigError(f"config file {path!r} does not exist")
  module_spec = importlib.util.spec_from_file_location("_regjax_config", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  variants = getattr(module, "VARIANTS", None)
  if arg and variants is not None and arg not in variants:
    close = difflib.get_close_matches(arg, variants, n=1)
    raise ConfigError(
        f"{os.path.relpath(path, REPO_ROOT)} has no variant {arg!r}"
        + (f" (did you mean {close[0]!r}?)" if close else "")
        + f"; allowed variants: {', '.join(variants)}")
  config = module.get_config(arg) if arg else module.get_config()
  config.lock()
  return config


def parse_override(text: str) -> tuple[str, str]:
  key, sep, value = text.partition("=")
  if not sep or not key.strip():
    raise ConfigError(f"override {text!r} must look like key.path=value")
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
  raise ConfigError(f"config key {key!r} expects {type(current).__name__} "
                    f"(current value {current!r}); got {raw!r}")


def _child(node: mlc.ConfigDict, part: str, path: str) -> Any:
  """`node[part]`, or a ConfigError naming the valid keys at that level."""
  if not isinstance(node, mlc.ConfigDict):
    raise ConfigError(f"config key {path!r}: {path.rsplit('.', 1)[0]!r} is a "
                      f"value, not a section")
  if part not in node:
    keys = sorted(node.keys())
    close = difflib.get_close_matches(part, keys, n=1)
    raise ConfigError(
        f"unknown config key {path!r}"
        + (f" (did you mean {close[0]!r}?)" if close else "")
        + f"; valid keys here: {', '.join(keys)}")
  return node[part]


def apply_overrides(config: mlc.ConfigDict,
                    overrides: Iterable[str] | Mapping[str, Any]
                    ) -> mlc.ConfigDict:
  """Returns a locked copy of `config` with `key.path=value` overrides.

  Unknown keys raise `ConfigError` with the valid keys at that level and a
  suggestion; string values are parsed to the type of the field they
  replace.
  """
  config = config.copy_and_resolve_references()  # deep copy
  config.lock()
  items = (overrides.items() if isinstance(overrides, Mapping)
           else (parse_override(o) for o in overrides))
  for key, raw in items:
    node = config
    *parents, leaf = key.split(".")
    for i, part in enumerate(parents):
      node = _child(node, part, ".".join(parents[:i + 1]))
    current = _child(node, leaf, key)
    value = _coerce(current, raw, key) if isinstance(raw, str) else raw
    try:
      setattr(node, leaf, value)
    except TypeError as e:
      raise ConfigError(f"config key {key!r}: {e}") from e
  return config


# ------------------------------------------------------- declared ranges
@dataclasses.dataclass(frozen=True)
class Rule:
  """A check of one config value: `test(v)` True when allowed."""
  allowed: str                    # e.g. "an int >= 1"
  test: Callable[[Any], bool]


def _num(v: Any) -> bool:
  return isinstance(v, (int, float)) and not isinstance(v, bool) and (
      math.isfinite(v))


def at_least(lo: float, integer: bool = False) -> Rule:
  kind = "an int" if integer else "a number"
  return Rule(f"{kind} >= {lo:g}", lambda v: _num(v) and v >= lo and (
      not integer or isinstance(v, int)))


def greater_than(lo: float, integer: bool = False) -> Rule:
  kind = "an int" if integer else "a number"
  return Rule(f"{kind} > {lo:g}", lambda v: _num(v) and v > lo and (
      not integer or isinstance(v, int)))


def between(lo: float, hi: float) -> Rule:
  return Rule(f"a number in [{lo:g}, {hi:g}]",
              lambda v: _num(v) and lo <= v <= hi)


def one_of(*values: Any) -> Rule:
  return Rule(f"one of {list(values)}", lambda v: v in values)


def each(rule: Rule) -> Rule:
  return Rule(f"a tuple whose items are each {rule.allowed}",
              lambda v: isinstance(v, tuple) and all(rule.test(x) for x in v))


def nonempty_tuple() -> Rule:
  return Rule("a non-empty tuple", lambda v: isinstance(v, tuple) and bool(v))


def lookup(config: mlc.ConfigDict, path: str) -> Any:
  node = config
  for i, part in enumerate(path.split(".")):
    node = _child(node, part, ".".join(path.split(".")[:i + 1]))
  return node


def check_rules(config: mlc.ConfigDict, rules: Mapping[str, Rule]) -> None:
  """Raises `ConfigError` for the first field outside its declared range.

  Rules for sections the config does not have are skipped (a rule of the
  supervised schema does not apply to a config without that section).
  """
  for path, rule in rules.items():
    try:
      value = lookup(config, path)
    except ConfigError:
      continue
    if not rule.test(value):
      raise ConfigError(f"config.{path}={value!r} is not allowed: expected "
                        f"{rule.allowed}")


# ------------------------------------------------------------ fingerprint
def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
  out = {}
  for k, v in d.items():
    if isinstance(v, Mapping):
      out.update(flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out


def comparable(config: mlc.ConfigDict,
               may_change: tuple[str, ...] = RESUME_MAY_CHANGE
               ) -> dict[str, Any]:
  """The flattened config without the keys that may change (JSON types)."""
  flat = flatten(json.loads(config.to_json()))
  return {k: v for k, v in sorted(flat.items())
          if not k.startswith(may_change)}


def fingerprint(config: mlc.ConfigDict,
                may_change: tuple[str, ...] = RESUME_MAY_CHANGE) -> str:
  """A short stable hash of everything that determines a run's result."""
  blob = json.dumps(comparable(config, may_change), sort_keys=True)
  return hashlib.sha256(blob.encode()).hexdigest()[:16]


def differences(saved: Mapping[str, Any], current: Mapping[str, Any],
                limit: int = 10) -> list[str]:
  """Lines `key: saved X, now Y` for the keys whose values differ."""
  keys = [k for k in sorted(set(saved) | set(current))
          if saved.get(k) != current.get(k)]
  lines = [f"  {k}: saved {saved.get(k)!r}, now {current.get(k)!r}"
           for k in keys[:limit]]
  if len(keys) > limit:
    lines.append(f"  ... {len(keys) - limit} more")
  return lines

"""Run bookkeeping every protocol shares: config checks, summaries, SIGTERM.

* `check_same_config(workdir, config)`: a workdir that holds a run of a
  different config (or whose saved config is missing while it holds
  checkpoints) is refused, never resumed.
* `cached_result` / `write_summary`: `summary.json` is written (atomically)
  only when a run finished, with the fingerprint of its config; a finished
  run is returned from it, and a summary of another config is refused.
* `Preemption`: SIGTERM becomes a flag the loops check between steps.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from typing import Any

import jax
import ml_collections as mlc

from common import config as config_lib
from common.core import logging_utils
from common.core import sharding
from common.protocols import RunResult

SUMMARY = "summary.json"
CONFIG = "config.json"


class WorkdirError(ValueError):
  """A workdir holds something this config must not resume or report."""


def _saved_config(workdir: str) -> dict[str, Any] | None:
  path = os.path.join(workdir, CONFIG)
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      return config_lib.flatten(json.load(f))
  except (OSError, ValueError) as e:
    raise WorkdirError(f"{path} is unreadable ({e}); it records the config "
                       "of the run in this workdir. Use a new --workdir.") from e


def check_same_config(workdir: str, config: mlc.ConfigDict,
                      has_checkpoint: bool) -> None:
  """Refuses to resume a run whose config differs from `config`.

  Args:
    workdir: the run's folder.
    config: the config about to run.
    has_checkpoint: whether the workdir holds a checkpoint (then a missing
      config.json cannot prove it is the same run).
  """
  saved = _saved_config(workdir)
  if saved is None:
    if has_checkpoint:
      raise WorkdirError(
          f"{workdir} holds checkpoints but no {CONFIG}, so nothing shows "
          f"they belong to this config. Use a new --workdir, or restore "
          f"{CONFIG}.")
    return
  current = config_lib.comparable(config)
  saved = {k: v for k, v in saved.items()
           if not k.startswith(config_lib.RESUME_MAY_CHANGE)}
  diff = config_lib.differences(saved, current)
  if diff:
    raise WorkdirError(
        f"{workdir} holds a run of a different config; resuming would mix "
        f"two runs:\n" + "\n".join(diff)
        + "\nUse a new --workdir, or rerun with the saved values.")


def write_config(workdir: str, config: mlc.ConfigDict) -> None:
  if jax.process_index() == 0:
    atomic_write(os.path.join(workdir, CONFIG), config.to_json(indent=2))


def atomic_write(path: str, text: str) -> None:
  """Writes `text` to `path` through a temporary file and a rename."""
  tmp = f"{path}.tmp{os.getpid()}"
  with open(tmp, "w", encoding="utf-8") as f:
    f.write(text)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


def check_smoke(result: RunResult, steps: int) -> None:
  """Raises unless a smoke run finished after exactly `steps` steps."""
  if result.status != "finished" or result.steps != steps:
    raise AssertionError(f"smoke run ended {result.status} after "
                         f"{result.steps} of {steps} steps")


def eval_history(workdir: str) -> list[dict[str, Any]]:
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return []
  return [r for r in logging_utils.read_jsonl(path) if r["split"] == "eval"]


def cached_result(workdir: str, config: mlc.ConfigDict) -> RunResult | None:
  """The finished run of `config` in `workdir`, or None if there is none.

  Raises:
    WorkdirError: the workdir's summary belongs to another config.
  """
  path = os.path.join(workdir, SUMMARY)
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      summary = json.load(f)
  except (OSError, ValueError):
    return None  # an unreadable summary is recomputed, never reported
  if summary.get("fingerprint") != config_lib.fingerprint(config):
    saved = _saved_config(workdir) or {}
    current = config_lib.comparable(config)
    saved = {k: v for k, v in saved.items()
             if not k.startswith(config_lib.RESUME_MAY_CHANGE)}
    raise WorkdirError(
        f"{workdir} holds a finished result of a different config "
        f"(fingerprint {summary.get('fingerprint')} vs "
        f"{config_lib.fingerprint(config)}):\n"
        + "\n".join(config_lib.differences(saved, current) or
                    ["  (config.json missing or equal: the code's schema "
                     "changed)"])
        + "\nUse a new --workdir.")
  return RunResult(status="finished", workdir=workdir,
                   steps=int(summary.get("steps", 0)),
                   final=dict(summary["final"]),
                   history=eval_history(workdir), seconds=0.0)


def begin(config: mlc.ConfigDict, workdir: str,
          validate: Any) -> RunResult | None:
  """The start every protocol's `run` shares: `validate(config)`, create
  the workdir, and return the finished result it holds (None if none)."""
  validate(config)
  os.makedirs(workdir, exist_ok=True)
  return cached_result(workdir, config)


def write_summary(workdir: str, config: mlc.ConfigDict,
                  result: RunResult) -> None:
  if jax.process_index() != 0:
    return
  atomic_write(os.path.join(workdir, SUMMARY), json.dumps({
      "status": result.status, "steps": result.steps, "final": result.final,
      "seconds": result.seconds,
      "fingerprint": config_lib.fingerprint(config)}, indent=2))


class Preemption:
  """Turns SIGTERM into a flag the loop checks between steps.

  With several processes, each host gets its SIGTERM at its own time; they
  must stop at the same step and save together. `agreed(step)` is the
  decision every process takes alike: the flags of all processes are
  gathered every `every_steps` steps (a host collective; single-process
  runs read their own flag every step at no cost).
  """

  def __init__(self, every_steps: int = 10):
    self.requested = False
    self.every_steps = every_steps
    self._previous = None

  def agreed(self, step: int) -> bool:
    if jax.process_count() == 1:
      return self.requested
    if step % self.every_steps:
      return False
    return sharding.any_process(self.requested)

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    return self

  def _handle(self, signum, frame):
    del signum, frame
    self.requested = True

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)

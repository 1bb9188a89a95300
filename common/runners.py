"""Experiment runners: how `regjax run <id>` and the smoke test run a config.

Most papers train a classifier with the shared harness, and
`common.study.run_study` runs their arms over seeds. Papers whose protocol is
not "train one model" (test-time adaptation streams, RL loops, OT map
fitting) name a runner module in `config.runner`. That module provides

* `run_study(config, workdir, seeds, arms, command) -> study.StudyResult`:
  the paper's table over `seeds` (and a subset of `arms`, if given), with
  `results.md` / `results.json` written under `workdir`;
* `smoke(config, workdir) -> None`: a few steps of the config, for
  `tests/experiments/test_smoke.py` (fails loudly if anything is off);
* optionally `validate(config) -> None`: cross-field checks, raising
  ValueError with what is wrong and what is allowed.

Runners still use the harness's pieces (configs, train step, checkpoints,
logging); they replace only the outer protocol.
"""

from __future__ import annotations

import importlib
import types
from typing import Sequence

import ml_collections as mlc

_REQUIRED = ("run_study", "smoke")


def get_runner(config: mlc.ConfigDict) -> types.ModuleType | None:
  """The runner module `config.runner` names, or None for the default."""
  name = config.runner
  if not name:
    return None
  try:
    module = importlib.import_module(name)
  except ModuleNotFoundError as e:
    raise ValueError(f"config.runner={name!r} is not an importable module "
                     f"({e})") from e
  missing = [f for f in _REQUIRED if not hasattr(module, f)]
  if missing:
    raise ValueError(f"runner module {name!r} lacks {missing}; a runner "
                     f"provides {list(_REQUIRED)}")
  return module


def run_study(config: mlc.ConfigDict, workdir: str, seeds: Sequence[int],
              arms: Sequence[str] = (), command: str = ""):
  """Runs the experiment's study with its runner, or the shared one."""
  runner = get_runner(config)
  if runner is None:
    from common import study  # pylint: disable=g-import-not-at-top
    return study.run_study(config, workdir, seeds, arms, command=command)
  return runner.run_study(config, workdir, seeds, arms, command=command)


def smoke(config: mlc.ConfigDict, workdir: str) -> None:
  """A few steps of `config` (`config.smoke.steps` for the shared loop)."""
  runner = get_runner(config)
  if runner is not None:
    runner.smoke(config, workdir)
    return
  from common import config as config_lib  # pylint: disable=g-import-not-at-top
  from common import loop  # pylint: disable=g-import-not-at-top
  config = config_lib.apply_overrides(config, {
      "train.steps": config.smoke.steps, "train.tensorboard": False,
      "train.eval_every_epochs": 0})
  result = loop.train(config, workdir, show_progress=False)
  if result.status != "finished" or result.steps != config.smoke.steps:
    raise AssertionError(f"smoke run ended {result.status} after "
                         f"{result.steps} steps")

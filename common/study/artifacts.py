"""Helpers for a study's `study.artifacts` hook.

A hook `artifacts(configs, workdir, runs) -> {name: path}` receives the
study's runs (arm -> seed -> `RunResult`) and writes extra tables or
figures into the study's folder. These two pieces are what every hook
starts and ends with.
"""

from __future__ import annotations

import os
from typing import Any, Mapping


def final_metrics(runs: Mapping[str, Mapping[int, Any]]
                  ) -> dict[str, dict[int, dict[str, float]]]:
  """arm -> seed -> the run's final evaluation metrics."""
  return {arm: {seed: run.final for seed, run in by_seed.items()}
          for arm, by_seed in runs.items()}


def write_markdown(workdir: str, filename: str, text: str) -> str:
  """Writes `text` to `workdir/filename` (UTF-8); returns the path."""
  path = os.path.join(workdir, filename)
  with open(path, "w", encoding="utf-8") as f:
    f.write(text)
  return path

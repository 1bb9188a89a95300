"""Helpers for a study's `study.artifacts` hook.

A hook `artifacts(configs, workdir, runs) -> {name: path}` receives the
study's runs (arm -> seed -> `RunResult`) and writes extra tables or
figures into the study's folder. These two pieces are what every hook
starts and ends with.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import numpy as np


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


def mean_std_cell(values, fmt: str = ".4f") -> str:
  """`"m +- s"` (sample std) of `values`; one value alone; "-" for none."""
  v = np.asarray(values, np.float64)
  if len(v) == 0:
    return "-"
  if len(v) == 1:
    return f"{v[0]:{fmt}}"
  return f"{v.mean():{fmt}} +- {v.std(ddof=1):{fmt}}"


def study_command(workdir: str) -> str:
  """The study's command line (the first line of its `results.md`, which
  the engine writes before the hook runs) and a blank line; "" if none."""
  path = os.path.join(workdir, "results.md")
  if not os.path.exists(path):
    return ""
  with open(path, encoding="utf-8") as f:
    return f.readline().strip() + "\n\n"


def bar_chart(finals: Mapping[str, Mapping[int, Mapping[str, float]]],
              keys: list[str], path: str, *, ylabel: str = "",
              xlabels: list[str] | None = None, title: str = "") -> str:
  """Grouped bars: one group per metric in `keys`, one bar per arm (mean
  over seeds, error bar = sample std when there are several); saved to
  `path` (PNG). Returns `path`."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  arms = list(finals)
  width = 0.8 / max(len(arms), 1)
  fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(keys) * max(len(arms), 2)
                                  / 2, 3.4))
  for i, arm in enumerate(arms):
    vals = np.asarray([[r[k] for k in keys] for r in finals[arm].values()],
                      np.float64)
    err = vals.std(0, ddof=1) if len(vals) > 1 else None
    ax.bar(np.arange(len(keys)) + (i - (len(arms) - 1) / 2) * width,
           vals.mean(0), width, yerr=err, label=arm)
  ax.set_xticks(np.arange(len(keys)), xlabels or keys)
  ax.set_ylabel(ylabel)
  if title:
    ax.set_title(title)
  ax.legend(fontsize="small")
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path

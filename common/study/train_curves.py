"""Training-log curves of a study: metric against step, per arm.

`engine.plot_curves` draws *eval* metrics against epoch; RL studies log
their quantities of interest (policy entropy, reward, diversity, success)
at every `log_every_steps` on the training rows. `plot_train_curves` draws
those: mean and +-1 std band over seeds of each key against step, one panel
per key, and `curve_summary` returns the numbers (for a table or a test).
A run's rows are `RunResult.history` (training rows carry `"step"` and
`split == "train"`) or, for a run read back from its summary (no history),
its `metrics.jsonl` (`<run>/metrics.jsonl`, or `<run>/<stage>/metrics.jsonl`
for protocols with stages, e.g. `lm_rl`'s `rl/`).
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping, Sequence

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np


def train_table(history: Sequence[Mapping[str, Any]], key: str
                ) -> tuple[np.ndarray, np.ndarray]:
  """`(steps, values)` of `key` on the training rows of one run."""
  rows = sorted((r for r in history if r.get("split") == "train"
                 and key in r and "step" in r), key=lambda r: r["step"])
  return (np.asarray([r["step"] for r in rows]),
          np.asarray([r[key] for r in rows], np.float64))


def run_rows(run: Any, stage: str = "") -> list[dict[str, Any]]:
  """A run's logged rows: its history, else its (stage's) metrics.jsonl.

  A staged protocol's history (e.g. `lm_rl`'s) holds its evaluations, not
  the stage's training rows, so with `stage` the file is read."""
  if not stage and getattr(run, "history", None):
    return list(run.history)
  path = os.path.join(run.workdir, stage, "metrics.jsonl")
  if not os.path.exists(path):
    return []
  with open(path, encoding="utf-8") as f:
    return [json.loads(line) for line in f if line.strip()]


def curve_summary(runs: Mapping[str, Mapping[int, Any]], key: str,
                  stage: str = ""
                  ) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
  """Per arm `(steps, mean, std)` over seeds (steps every seed logged)."""
  out = {}
  for arm, by_seed in runs.items():
    tables = [train_table(run_rows(r, stage), key)
              for r in by_seed.values()]
    tables = [t for t in tables if len(t[0])]
    if not tables:
      continue
    steps = sorted(set.intersection(*[set(t[0].tolist()) for t in tables]))
    vals = np.asarray([[v[list(s).index(st)] for st in steps]
                       for s, v in tables])
    std = vals.std(0, ddof=1) if len(vals) > 1 else np.zeros(len(steps))
    out[arm] = (np.asarray(steps), vals.mean(0), std)
  return out


def plot_train_curves(runs: Mapping[str, Mapping[int, Any]],
                      keys: Sequence[str], labels: Mapping[str, str],
                      path: str, stage: str = "") -> None:
  """One panel per key: mean +- std over seeds against step, per arm."""
  fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.4),
                           squeeze=False)
  for ax, key in zip(axes[0], keys):
    for arm, (steps, mean, std) in curve_summary(runs, key, stage).items():
      ax.plot(steps, mean, label=arm)
      ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
    ax.set_xlabel("step")
    ax.set_ylabel(labels.get(key, key))
  axes[0][0].legend()
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def runs_from_workdir(workdir: str) -> dict[str, dict[int, Any]]:
  """`{arm: {seed: run}}` of a finished study folder (`<arm>/seed_<k>/`),
  each run with `workdir` and no history (its rows come from
  `metrics.jsonl`): to redraw an artifacts hook without the study."""
  import types  # pylint: disable=g-import-not-at-top
  out: dict[str, dict[int, Any]] = {}
  for arm in sorted(os.listdir(workdir)):
    folder = os.path.join(workdir, arm)
    if not os.path.isdir(folder):
      continue
    for name in sorted(os.listdir(folder)):
      if name.startswith("seed_") and name[5:].isdigit():
        out.setdefault(arm, {})[int(name[5:])] = types.SimpleNamespace(
            workdir=os.path.join(folder, name), history=None)
  return out

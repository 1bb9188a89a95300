"""Training-log curves of a study: metric against step, per arm.

`engine.plot_curves` draws *eval* metrics against epoch; RL studies log
their quantities of interest (policy entropy, reward, diversity, success)
at every `log_every_steps` on the training rows. `plot_train_curves` draws
those: mean and +-1 std band over seeds of each key against step, one panel
per key, and `curve_summary` returns the numbers (for a table or a test).
A run's rows are `RunResult.history` (what the protocol returned, whose
training rows carry `"step"` and `split == "train"`).
"""

from __future__ import annotations

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


def curve_summary(runs: Mapping[str, Mapping[int, Any]], key: str
                  ) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
  """Per arm `(steps, mean, std)` over seeds (steps every seed logged)."""
  out = {}
  for arm, by_seed in runs.items():
    tables = [train_table(r.history or [], key) for r in by_seed.values()]
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
                      path: str) -> None:
  """One panel per key: mean +- std over seeds against step, per arm."""
  fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.4),
                           squeeze=False)
  for ax, key in zip(axes[0], keys):
    for arm, (steps, mean, std) in curve_summary(runs, key).items():
      ax.plot(steps, mean, label=arm)
      ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
    ax.set_xlabel("step")
    ax.set_ylabel(labels.get(key, key))
  axes[0][0].legend()
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)

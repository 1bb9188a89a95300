"""The ELR study's early-learning table (`config.study.artifacts`).

The claim is about the shape of the test curve: cross-entropy's clean test
error reaches a minimum early, then rises as the network memorises the
wrong labels, while ELR's does not rise. Per arm, over seeds: the best test
error over training and its epoch, the final error, the mean error of the
last quarter of the evaluations (the final point alone is noisy at a
constant step size), the rise = last-quarter mean - best, and the
fraction of the corrupted training examples predicted as their noisy label
at the end (memorised).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from common.study import tables as tables_lib


def early_learning(history: list[dict[str, Any]]) -> dict[str, float]:
  """The row quantities of one run from its eval history (epoch order)."""
  evals = sorted((r for r in history if "error" in r),
                 key=lambda r: r["epoch"])
  errors = np.array([r["error"] for r in evals])
  best = int(np.argmin(errors))
  tail = errors[-max(1, len(errors) // 4):]
  return {"best_error": float(errors[best]),
          "best_epoch": float(evals[best]["epoch"]),
          "final_error": float(errors[-1]),
          "tail_error": float(tail.mean()),
          "rise": float(tail.mean() - errors[best]),
          "memorised": float(evals[-1].get("corrupted_pred_noisy", np.nan))}


COLUMNS = (("best test error (%)", "best_error", ".1f"),
           ("at epoch", "best_epoch", ".0f"),
           ("final test error (%)", "final_error", ".1f"),
           ("last-quarter mean error (%)", "tail_error", ".1f"),
           ("rise (points)", "rise", ".1f"),
           ("memorised at end", "memorised", ".3f"))


def table(runs: dict[str, dict[int, Any]]) -> str:
  """Markdown: a row per arm, mean +- std over seeds of `COLUMNS`."""
  rows = ["| arm | " + " | ".join(c[0] for c in COLUMNS) + " |",
          "|---" * (len(COLUMNS) + 1) + "|"]
  for arm, by_seed in runs.items():
    per_seed = [early_learning(r.history) for r in by_seed.values()]
    cells = []
    for _, key, fmt in COLUMNS:
      mean, std = tables_lib.mean_std([p[key] for p in per_seed])
      cells.append(f"{mean:{fmt}}" + ("" if std is None else
                                      f" +- {std:{fmt}}"))
    rows.append(f"| {arm} | " + " | ".join(cells) + " |")
  return "\n".join(rows)


def artifacts(configs: dict[str, Any], workdir: str,
              runs: dict[str, dict[int, Any]]) -> dict[str, str]:
  """Writes `early_learning.md` next to the study's `results.md`."""
  del configs
  command = ""
  study_md = os.path.join(workdir, "results.md")
  if os.path.exists(study_md):   # the study's command, on its first line
    with open(study_md, encoding="utf-8") as f:
      command = f.readline().strip() + "\n\n"
  seeds = sorted({s for by_seed in runs.values() for s in by_seed})
  path = os.path.join(workdir, "early_learning.md")
  with open(path, "w", encoding="utf-8") as f:
    f.write(command + "Clean test error over training, from each run's eval "
            f"history (mean +- std over seeds {seeds}); 'memorised' is the "
            "fraction of the corrupted training examples predicted as their "
            "noisy label at the end.\n\n" + table(runs) + "\n")
  return {"early_learning": path}

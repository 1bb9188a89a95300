"""The study's model-selection table (`config.study.artifacts`).

The official code keeps, for every method, the checkpoint of the epoch with
the best accuracy on the clean validation split (`netBest.pth`) and reports
its test accuracy at that epoch's K. The harness reports the last epoch;
this table adds the official choice from each run's eval history (every
`train.eval_every_epochs` epochs, so a coarser choice than per epoch): per
arm, mean +- std over seeds of the test error at the best-validation
evaluation, its epoch and K, and the final test error.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from common.study import tables as tables_lib


def selected(history: list[dict[str, Any]]) -> dict[str, float]:
  """The row quantities of one run from its eval history."""
  evals = sorted((r for r in history if "val_error" in r),
                 key=lambda r: r["epoch"])
  # First of equal validation errors (the official `acc > best_acc`).
  best = int(np.argmin([r["val_error"] for r in evals]))
  return {"selected_error": float(evals[best]["error"]),
          "selected_epoch": float(evals[best]["epoch"]),
          "selected_k": float(evals[best].get("num_kept", np.nan)),
          "final_error": float(evals[-1]["error"])}


COLUMNS = (("test error at best val. epoch (%)", "selected_error", ".1f"),
           ("epoch", "selected_epoch", ".0f"),
           ("K there", "selected_k", ".0f"),
           ("final test error (%)", "final_error", ".1f"))


def table(runs: dict[str, dict[int, Any]]) -> str:
  """Markdown: a row per arm, mean +- std over seeds of `COLUMNS`."""
  rows = ["| arm | " + " | ".join(c[0] for c in COLUMNS) + " |",
          "|---" * (len(COLUMNS) + 1) + "|"]
  for arm, by_seed in runs.items():
    per_seed = [selected(r.history) for r in by_seed.values()]
    cells = []
    for _, key, fmt in COLUMNS:
      mean, std = tables_lib.mean_std([p[key] for p in per_seed])
      cells.append(f"{mean:{fmt}}" + ("" if std is None else
                                      f" +- {std:{fmt}}"))
    rows.append(f"| {arm} | " + " | ".join(cells) + " |")
  return "\n".join(rows)


def artifacts(configs: dict[str, Any], workdir: str,
              runs: dict[str, dict[int, Any]]) -> dict[str, str]:
  """Writes `selection.md` next to the study's `results.md`."""
  del configs
  command = ""
  study_md = os.path.join(workdir, "results.md")
  if os.path.exists(study_md):   # the study's command, on its first line
    with open(study_md, encoding="utf-8") as f:
      command = f.readline().strip() + "\n\n"
  seeds = sorted({s for by_seed in runs.values() for s in by_seed})
  path = os.path.join(workdir, "selection.md")
  with open(path, "w", encoding="utf-8") as f:
    f.write(command + "The official model selection (the evaluation with "
            "the lowest clean validation error) from each run's eval "
            f"history, mean +- std over seeds {seeds}.\n\n" + table(runs)
            + "\n")
  return {"selection": path}

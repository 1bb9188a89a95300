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


LABELS = {"selected_error": "test error at best val. epoch (%)",
          "selected_epoch": "epoch", "selected_k": "K there",
          "final_error": "final test error (%)"}
FORMATS = {"selected_error": ".1f", "selected_epoch": ".0f",
           "selected_k": ".0f", "final_error": ".1f"}


def artifacts(configs: dict[str, Any], workdir: str,
              runs: dict[str, dict[int, Any]]) -> dict[str, str]:
  """Writes `selection.md` (the study's command, then the table)."""
  del configs
  rows = {arm: {seed: selected(r.history) for seed, r in by_seed.items()}
          for arm, by_seed in runs.items()}
  seeds = sorted({s for by_seed in runs.values() for s in by_seed})
  with open(os.path.join(workdir, "results.md"), encoding="utf-8") as f:
    command = f.readline().strip()
  text = (f"{command}\n\nThe official model selection (the evaluation with "
          "the lowest clean validation error) from each run's eval history, "
          f"mean +- std over seeds {seeds}.\n\n"
          + tables_lib.default_table(rows, tuple(LABELS), LABELS, {},
                                     FORMATS) + "\n")
  path = os.path.join(workdir, "selection.md")
  with open(path, "w", encoding="utf-8") as f:
    f.write(text)
  return {"selection": path}

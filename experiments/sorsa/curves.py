"""The SORSA study's convergence table (`config.study.artifacts`): the
adapted model's train loss (next-token loss only, without the regulariser)
at a few steps and averaged over the run (area under the curve), and the
held-out loss and orthonormality error at each evaluation, mean +- std
over seeds; `train_curves.png` plots the train loss."""

from __future__ import annotations

import os
from typing import Any

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from common.core import logging_utils
from common.study import artifacts as artifacts_lib


def train_curve(run_dir: str) -> dict[int, float]:
  """Step -> logged next-token train loss of a fine-tuning run."""
  path = os.path.join(run_dir, "finetune", "metrics.jsonl")
  records = logging_utils.read_jsonl(path) if os.path.exists(path) else []
  return {int(r["step"]): float(r["method/loss"]) for r in records
          if r.get("split") == "train" and "method/loss" in r}


def artifacts(configs: dict[str, Any], workdir: str,
              runs: dict[str, dict[int, Any]]) -> dict[str, str]:
  """Writes `convergence.md` and `train_curves.png`."""
  del configs
  curves = {arm: {seed: train_curve(os.path.join(workdir, arm,
                                                 f"seed_{seed}"))
                  for seed in by_seed} for arm, by_seed in runs.items()}
  steps = sorted(set.intersection(*[set(c) for by_seed in curves.values()
                                    for c in by_seed.values()] or [set()]))
  picks = [s for s in steps if s in (steps[:1] + steps[len(steps) // 4::
                                                        len(steps) // 4
                                                        or 1])][:5]
  head = " | ".join(f"train loss @ {s}" for s in picks)
  rows = [f"| arm | {head} | mean train loss (AUC) |",
          "|---" * (len(picks) + 2) + "|"]
  fig, ax = plt.subplots(figsize=(5.0, 3.4))
  for arm, by_seed in curves.items():
    table = np.asarray([[c[s] for s in steps] for c in by_seed.values()])
    cells = [artifacts_lib.mean_std_cell(table[:, steps.index(s)])
             for s in picks]
    rows.append(f"| {arm} | " + " | ".join(cells) + " | "
                + artifacts_lib.mean_std_cell(table.mean(axis=1)) + " |")
    mean = table.mean(0)
    ax.plot(steps, mean, label=arm)
  ax.set_xlabel("fine-tuning step")
  ax.set_ylabel("train loss (nats/token)")
  ax.legend(fontsize=7)
  fig.tight_layout()
  plot = os.path.join(workdir, "train_curves.png")
  fig.savefig(plot, dpi=120)
  plt.close(fig)
  # Held-out loss and orthonormality error at every evaluation.
  evals = {arm: [[r for r in run.history if "epoch" in r]
                 for run in by_seed.values()] for arm, by_seed in runs.items()}
  epochs = sorted({r["epoch"] for hs in evals.values() for h in hs
                   for r in h})
  ev = ["| arm | metric | " + " | ".join(f"epoch {e}" for e in epochs) + " |",
        "|---|---|" + "---|" * len(epochs)]
  for arm, hs in evals.items():
    for key, fmt in (("loss", ".4f"), ("ortho", ".2e")):
      cells = [artifacts_lib.mean_std_cell([r[key] for h in hs for r in h
                      if r["epoch"] == e and key in r], fmt) for e in epochs]
      ev.append(f"| {arm} | {key} | " + " | ".join(cells) + " |")
  text = ("Train loss of the adapted model (next-token loss only), mean +- "
          "std over seeds:\n\n" + "\n".join(rows) +
          "\n\nHeld-out loss (arithmetic test split) and orthonormality "
          "error of the SORSA factors at each evaluation:\n\n"
          + "\n".join(ev) + "\n")
  text = artifacts_lib.study_command(workdir) + text
  md = artifacts_lib.write_markdown(workdir, "convergence.md", text)
  return {"convergence": md, "train_curves": plot}

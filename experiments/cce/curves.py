"""The CCE study's curve comparison (`config.study.artifacts`): per seed,
the largest gap between the naive and the CCE train-loss curves, and the
curves themselves."""

from __future__ import annotations

import os
from typing import Any

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from common.core import logging_utils


def train_curve(run_dir: str) -> dict[int, float]:
  """Step -> logged train loss of one run."""
  records = logging_utils.read_jsonl(os.path.join(run_dir, "metrics.jsonl"))
  return {int(r["step"]): float(r["loss"]) for r in records
          if r.get("split") == "train" and "loss" in r}


def artifacts(configs: dict[str, Any], workdir: str,
              runs: dict[str, dict[int, Any]]) -> dict[str, str]:
  """Writes `curves.md` (gap per seed) and `loss_curves.png`."""
  del configs
  seeds = sorted(runs["naive"])
  rows = ["| seed | logged steps | first / last train loss (naive) | "
          "max abs gap | max relative gap | gap at the last step | "
          "held-out loss naive | held-out loss CCE |",
          "|---|---|---|---|---|---|---|---|"]
  fig, ax = plt.subplots(figsize=(4.8, 3.4))
  for seed in seeds:
    curves = {arm: train_curve(os.path.join(workdir, arm, f"seed_{seed}"))
              for arm in ("naive", "cce")}
    steps = sorted(set(curves["naive"]) & set(curves["cce"]))
    naive = np.array([curves["naive"][s] for s in steps])
    ours = np.array([curves["cce"][s] for s in steps])
    gap = np.abs(ours - naive)
    rows.append(
        f"| {seed} | {len(steps)} ({steps[0]}..{steps[-1]}) | "
        f"{naive[0]:.4f} / {naive[-1]:.4f} | {gap.max():.2e} | "
        f"{(gap / np.abs(naive)).max():.2e} | {gap[-1]:.2e} | "
        f"{runs['naive'][seed].final['loss']:.6f} | "
        f"{runs['cce'][seed].final['loss']:.6f} |")
    for arm, values, style in (("naive", naive, "-"), ("cce", ours, ":")):
      ax.plot(steps, values, style, label=f"{arm}, seed {seed}")
  ax.set_xlabel("step")
  ax.set_ylabel("train loss (nats/token)")
  ax.legend(fontsize=7)
  fig.tight_layout()
  paths = {"curves_plot": os.path.join(workdir, "loss_curves.png"),
           "curves": os.path.join(workdir, "curves.md")}
  fig.savefig(paths["curves_plot"], dpi=120)
  plt.close(fig)
  with open(paths["curves"], "w", encoding="utf-8") as f:
    f.write("Train loss of the same run with the naive loss and with CCE "
            "(same initialisation and batches), logged every "
            "`train.log_every_steps`.\n\n" + "\n".join(rows) + "\n")
  return paths

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


CONTROL = "naive (2 micro-batches)"


def artifacts(configs: dict[str, Any], workdir: str,
              runs: dict[str, dict[int, Any]]) -> dict[str, str]:
  """Writes `curves.md` (gaps per seed) and `loss_curves.png`."""
  del configs
  rows = ["| seed | logged steps | train loss at the first / last step "
          "(naive) | identical up to step | max abs gap CCE | max abs gap "
          "control | last-step gap CCE | last-step gap control | "
          "held-out loss naive / CCE / control |",
          "|---|---|---|---|---|---|---|---|---|"]
  fig, ax = plt.subplots(figsize=(4.8, 3.4))
  for seed in sorted(runs["naive"]):
    curves = {arm: train_curve(os.path.join(workdir, arm, f"seed_{seed}"))
              for arm in ("naive", "cce", CONTROL) if arm in runs}
    steps = sorted(set.intersection(*map(set, curves.values())))
    values = {arm: np.array([c[s] for s in steps]) for arm, c in
              curves.items()}
    gaps = {arm: np.abs(v - values["naive"]) for arm, v in values.items()}
    same = [s for s, g in zip(steps, gaps["cce"]) if g == 0.0]
    first_diff = next((s for s, g in zip(steps, gaps["cce"]) if g != 0.0),
                      None)
    upto = (f"{steps[-1]} (all)" if first_diff is None else
            f"{max([s for s in same if s < first_diff], default='-')}")
    control = gaps.get(CONTROL)
    held = " / ".join(f"{runs[a][seed].final['loss']:.5f}"
                      for a in ("naive", "cce", CONTROL) if a in runs)
    rows.append(
        f"| {seed} | {len(steps)} ({steps[0]}..{steps[-1]}) | "
        f"{values['naive'][0]:.4f} / {values['naive'][-1]:.4f} | {upto} | "
        f"{gaps['cce'].max():.1e} | "
        f"{'-' if control is None else f'{control.max():.1e}'} | "
        f"{gaps['cce'][-1]:.1e} | "
        f"{'-' if control is None else f'{control[-1]:.1e}'} | {held} |")
    for arm, style in (("naive", "-"), ("cce", ":"), (CONTROL, "--")):
      if arm in values:
        ax.plot(steps, values[arm], style, label=f"{arm}, seed {seed}")
  ax.set_xlabel("step")
  ax.set_ylabel("train loss (nats/token)")
  ax.legend(fontsize=6)
  fig.tight_layout()
  paths = {"curves_plot": os.path.join(workdir, "loss_curves.png"),
           "curves": os.path.join(workdir, "curves.md")}
  fig.savefig(paths["curves_plot"], dpi=120)
  plt.close(fig)
  command = ""
  study_md = os.path.join(workdir, "results.md")
  if os.path.exists(study_md):   # the study's command, on its first line
    with open(study_md, encoding="utf-8") as f:
      command = f.readline().strip() + "\n\n"
  with open(paths["curves"], "w", encoding="utf-8") as f:
    f.write(command + "Train loss of the same run (same initialisation and "
            "batches) with the naive loss, with CCE, and with the naive loss "
            "summed over 2 micro-batches (the control: a change of float "
            "rounding only); gaps are absolute differences from the naive "
            "curve, logged every `train.log_every_steps`.\n\n"
            + "\n".join(rows) + "\n")
  return paths

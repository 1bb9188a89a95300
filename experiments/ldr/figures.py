"""Figures of the LDR study (`config.study.artifacts`).

* `error_curves.png`: clean test error against epoch, one panel per noise
  setting, one line per loss (mean over seeds).
* `lambdas.png` and `lambdas.md`: ALDR-KL's per-example lambda, averaged
  over the batch's examples whose label is corrupted and over the others,
  against the training step (the adaptivity of the method), and its final
  values.
"""

from __future__ import annotations

import collections
import os
from typing import Any

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from common.core import logging_utils
from experiments.ldr import config as config_lib


def _split_arm(arm: str) -> tuple[str, str]:
  loss, _, noise = arm.rpartition("/")
  return loss, noise


def _mean_curve(histories: list[list[dict[str, Any]]], key: str):
  runs = [{r["epoch"]: r[key] for r in h if "epoch" in r and key in r}
          for h in histories]
  epochs = sorted(set.intersection(*map(set, runs))) if runs else []
  return epochs, np.array([[r[e] for e in epochs] for r in runs]).mean(0)


def _lambda_curves(workdir: str, arm: str, seeds) -> dict[str, np.ndarray]:
  """step -> mean over seeds of the logged lam_noisy / lam_clean."""
  out = collections.defaultdict(list)
  for seed in seeds:
    records = logging_utils.read_jsonl(
        os.path.join(workdir, arm, f"seed_{seed}", "metrics.jsonl"))
    for key in ("lam_noisy", "lam_clean"):
      out[key].append({r["step"]: r[f"method/{key}"] for r in records
                       if r.get("split") == "train"
                       and f"method/{key}" in r})
  curves = {}
  for key, runs in out.items():
    steps = sorted(set.intersection(*map(set, runs)))
    curves["step"] = np.array(steps)
    curves[key] = np.array([[r[s] for s in steps] for r in runs]).mean(0)
  return curves


def artifacts(configs: dict[str, Any], workdir: str,
              runs: dict[str, dict[int, Any]]) -> dict[str, str]:
  del configs
  by_noise = collections.defaultdict(dict)
  for arm, by_seed in runs.items():
    loss, noise = _split_arm(arm)
    by_noise[noise][loss] = [r.history for r in by_seed.values()]
  noises = [n for n in config_lib.NOISES if n in by_noise]
  losses = [l for l in config_lib.LOSSES
            if any(l in by_noise[n] for n in noises)]
  cols = min(4, len(noises))
  rows = -(-len(noises) // cols)
  fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.0 * rows),
                           squeeze=False, sharey=True)
  for ax in axes.flat[len(noises):]:
    ax.axis("off")
  for ax, noise in zip(axes.flat, noises):
    for loss in losses:
      histories = by_noise[noise].get(loss)
      if not histories:
        continue
      epochs, mean = _mean_curve(histories, "error")
      if epochs:
        ax.plot(epochs, mean, label=loss,
                lw=2.0 if loss.startswith("ALDR") else 1.0)
    ax.set_title(noise)
    ax.set_xlabel("epoch")
  for row in axes:
    row[0].set_ylabel("clean test error (%)")
  axes.flat[0].legend(fontsize=6)
  fig.tight_layout()
  paths = {"error_curves": os.path.join(workdir, "error_curves.png")}
  fig.savefig(paths["error_curves"], dpi=110)
  plt.close(fig)

  aldr = [a for a in runs if _split_arm(a)[0].startswith("ALDR")
          and _split_arm(a)[1] != "clean"]
  if not aldr:
    return paths
  rows = ["| arm | final lambda, corrupted labels | final lambda, clean "
          "labels |", "|---|---|---|"]
  families = sorted({_split_arm(a)[0] for a in aldr})
  fig, axes = plt.subplots(1, len(families), figsize=(4.6 * len(families),
                                                      3.4), squeeze=False)
  for ax, family in zip(axes[0], families):
    for arm in sorted(a for a in aldr if _split_arm(a)[0] == family):
      curves = _lambda_curves(workdir, arm, sorted(runs[arm]))
      line, = ax.plot(curves["step"], curves["lam_noisy"],
                      label=_split_arm(arm)[1])
      ax.plot(curves["step"], curves["lam_clean"], ls=":",
              color=line.get_color())
      rows.append(f"| {arm} | {curves['lam_noisy'][-1]:.4f} | "
                  f"{curves['lam_clean'][-1]:.4f} |")
    ax.set_title(family)
    ax.set_xlabel("step")
    ax.legend(fontsize=7)
  axes[0][0].set_ylabel("batch mean of lambda_i\n(solid: corrupted labels, "
                        "dotted: clean)")
  fig.tight_layout()
  paths["lambdas"] = os.path.join(workdir, "lambdas.png")
  fig.savefig(paths["lambdas"], dpi=110)
  plt.close(fig)
  paths["lambdas_table"] = os.path.join(workdir, "lambdas.md")
  with open(paths["lambdas_table"], "w") as f:
    f.write("ALDR-KL's per-example lambda (mean over seeds of the last "
            "logged batch means)\n\n" + "\n".join(rows) + "\n")
  return paths

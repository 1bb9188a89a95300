"""EPO study artifacts (`config.study.artifacts`): `curves.png` (training
success, policy entropy, corridor penalty against step, mean +- std over
seeds) and `entropy_variance.md`: per arm, the variance over training steps
of the logged policy entropy (the paper's stability claim), mean +- std
over seeds."""

from __future__ import annotations

import os

import numpy as np

from common.protocols import runs as runs_lib
from common.study import train_curves

KEYS = ("method/success", "method/entropy", "method/turns")
LABELS = {"method/success": "training success rate",
          "method/entropy": "policy entropy (nats/token)",
          "method/turns": "turns per episode"}


def artifacts(configs, workdir, runs):
  del configs
  path = os.path.join(workdir, "curves.png")
  train_curves.plot_train_curves(runs, KEYS, LABELS, path, stage="rl")
  lines = ["| arm | var(entropy) over steps | std of step-to-step change "
           "| final training success (last 20% of steps) |",
           "|---|---|---|---|"]
  for arm, by_seed in runs.items():
    var, jump, succ = [], [], []
    for r in by_seed.values():
      rows = train_curves.run_rows(r, "rl")
      _, ent = train_curves.train_table(rows, "method/entropy")
      _, s = train_curves.train_table(rows, "method/success")
      if len(ent) > 1:
        var.append(np.var(ent))
        jump.append(np.std(np.diff(ent)))
      if len(s):
        succ.append(np.mean(s[-max(1, len(s) // 5):]))
    fmt = lambda v: (f"{np.mean(v):.4f} ± {np.std(v, ddof=1):.4f}"
                     if len(v) > 1 else (f"{v[0]:.4f}" if v else "-"))
    lines.append(f"| {arm} | {fmt(var)} | {fmt(jump)} | {fmt(succ)} |")
  table = os.path.join(workdir, "entropy_variance.md")
  runs_lib.atomic_write(table, "\n".join(lines) + "\n")
  return {"curves": path, "entropy_variance": table}


if __name__ == "__main__":
  import sys  # pylint: disable=g-import-not-at-top
  # python -m experiments.<id>.figures <study workdir>: redraw from the runs
  print(artifacts(None, sys.argv[1],
                  train_curves.runs_from_workdir(sys.argv[1])))

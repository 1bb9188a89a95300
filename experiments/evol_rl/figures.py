"""EVOL-RL study artifacts (`config.study.artifacts`): `curves.png`, the
training curves of policy entropy, within-group similarity of the
completions, majority share and pseudo-label accuracy (mean +- std over
seeds) for each arm."""

from __future__ import annotations

import os

from common.study import train_curves

KEYS = ("method/entropy", "method/mean_similarity", "method/majority_ratio",
        "method/label_accuracy")
LABELS = {"method/entropy": "policy entropy (nats/token)",
          "method/mean_similarity": "within-group similarity",
          "method/majority_ratio": "majority share of group",
          "method/label_accuracy": "majority label accuracy"}


def artifacts(configs, workdir, runs):
  del configs
  path = os.path.join(workdir, "curves.png")
  train_curves.plot_train_curves(runs, KEYS, LABELS, path, stage="rl")
  return {"curves": path}


if __name__ == "__main__":
  import sys  # pylint: disable=g-import-not-at-top
  # python -m experiments.<id>.figures <study workdir>: redraw from the runs
  print(artifacts(None, sys.argv[1],
                  train_curves.runs_from_workdir(sys.argv[1])))

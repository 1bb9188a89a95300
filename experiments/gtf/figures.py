"""Attractor plots of the gtf studies (`config.study.artifacts`).

`attractors` restores each arm's first-seed model, runs it freely from the
first state of the held-out test trajectory (as the evaluator does) and
draws `attractors.png`: the test attractor and each arm's generated one
(first two observed dimensions against the third, 20k steps), plus the
first observed dimension over time (first 2k steps) of test and models.
"""

from __future__ import annotations

import os
from typing import Any

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from algos.dynamics import evaluate
from common import config as config_lib
from common.data import dynamical_generators
from common.protocols import supervised

SHOWN = 20_000     # steps drawn per attractor
TRACE = 2_000      # steps of the time-course panel


def attractors(configs: dict[str, Any], workdir: str,
               runs: dict[str, dict[int, Any]]) -> dict[str, str]:
  arms = list(runs)
  fig = plt.figure(figsize=(4 * (len(arms) + 1), 8))
  ax = fig.add_subplot(2, 1, 2)
  for i, arm in enumerate(arms):
    seed = sorted(runs[arm])[0]
    cfg = config_lib.apply_overrides(configs[arm], {"seed": seed})
    setup, state = supervised.restore(cfg, runs[arm][seed].workdir)
    kw = evaluate.settings(cfg)
    test = dynamical_generators.dataset(cfg)["test"][:kw["length"]]
    gen = evaluate.free_run(setup, state, test)["generated"]
    if i == 0:
      _attractor(fig, len(arms) + 1, 1, test, "test (ground truth)")
    _attractor(fig, len(arms) + 1, i + 2, gen, f"{arm} (seed {seed})")
    ax.plot(np.clip(gen[:TRACE, 0], -5, 5), lw=0.8, label=arm)
  ax.plot(test[:TRACE, 0], "k", lw=1.2, label="test")
  ax.set(xlabel="time step", ylabel="x1 (standardised, clipped to +-5)",
         title="free run from the first test state")
  ax.legend(fontsize=7, ncol=len(arms) + 1)
  fig.tight_layout()
  path = os.path.join(workdir, "attractors.png")
  fig.savefig(path, dpi=90)
  plt.close(fig)
  return {"attractors": path}


def _attractor(fig, cols: int, index: int, traj: np.ndarray, title: str):
  ax = fig.add_subplot(2, cols, index, projection="3d")
  t = traj[:SHOWN]
  ok = np.all(np.isfinite(t), 1) & np.all(np.abs(t) < 10, 1)
  ax.plot(t[ok, 0], t[ok, 1], t[ok, 2], lw=0.3)
  ax.set_title(title, fontsize=9)

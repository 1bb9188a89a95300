"""The WDM study's figure: probe accuracy against n, one curve per objective
(`config.study.artifacts`)."""

from __future__ import annotations

import os
from typing import Any

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np


def artifacts(configs: dict[str, Any], workdir: str,
              runs: dict[str, dict[int, Any]]) -> dict[str, str]:
  """Writes `probe_vs_n.png` (mean +- std over seeds) into `workdir`."""
  curves: dict[str, list[tuple[int, float, float]]] = {}
  for arm, by_seed in runs.items():
    objective = arm.rsplit(" n=", 1)[0]
    values = [r.final["probe_acc"] for r in by_seed.values()]
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    curves.setdefault(objective, []).append(
        (int(configs[arm].data.kwargs.num_digits), float(np.mean(values)), std))
  fig, ax = plt.subplots(figsize=(4.5, 3.4))
  for objective, points in curves.items():
    ns, mean, std = zip(*sorted(points))
    ax.errorbar(ns, mean, yerr=std, marker="o", capsize=3, label=objective)
    ax.set_xticks(ns)
  ax.set_xlabel("number of digits n (MI = n log 10)")
  ax.set_ylabel("linear-probe accuracy (%)")
  ax.legend()
  fig.tight_layout()
  path = os.path.join(workdir, "probe_vs_n.png")
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return {"figure": path}

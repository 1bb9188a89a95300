"""The dc_pdd study hook: membership AUROC against training epochs.

One panel for all non-members and one for the common-words ones; a line
per score (mean over seeds, +-1 std band). Arms are named `e<epochs>`.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from algos.analysis import membership_eval as membership
from common.study import artifacts


def auroc_figure(configs: Mapping[str, Any], workdir: str,
                 runs: Mapping[str, Mapping[int, Any]]) -> dict[str, str]:
  """Writes `<workdir>/auroc_vs_epochs.png`."""
  del configs
  finals = artifacts.final_metrics(runs)
  arms = sorted((a for a in finals if a.startswith("e")),
                key=lambda a: int(a[1:]))
  epochs = [int(a[1:]) for a in arms]
  fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.4), sharey=True)
  for ax, kind, title in zip(axes, ("auroc", "auroc_common"),
                             ("all non-members", "common-words non-members")):
    for score in membership.SCORES:
      vals = np.asarray([[r[f"{kind}/{score}"] for r in finals[a].values()]
                         for a in arms], np.float64)
      mean, std = vals.mean(1), vals.std(1)
      ax.plot(epochs, mean, marker="o", label=score)
      ax.fill_between(epochs, mean - std, mean + std, alpha=0.2)
    ax.set_xscale("log")
    ax.set_xticks(epochs, [str(e) for e in epochs])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("training epochs over the members")
    ax.set_title(title)
  axes[0].set_ylabel("AUROC (members vs non-members)")
  axes[0].legend()
  fig.tight_layout()
  path = os.path.join(workdir, "auroc_vs_epochs.png")
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return {"auroc_figure": path}

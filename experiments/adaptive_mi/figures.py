"""The adaptive_mi figures and tables (`config.study.artifacts`).

From the eval histories of every (arm, seed):

* `info_plane_<arm>.png`: the information plane of the arm's first seed
  with the three estimators side by side (EBAB, fixed-width bins, adaptive
  KDE), one line per layer, the measuring epochs coloured on a log scale;
* `compression.md` / `.json`: per arm and layer, the peak of I(X;T) over
  training, its final value and the compression `peak - final` (bits;
  the paper's "compression" of a layer) and the late compression (from the
  point where the layer's I(T;Y) has reached 90% of its final value), mean
  +- std over seeds, for EBAB and adaptive KDE;
* `generalisation.md`: over every run, Spearman's rank correlation of each
  layer's compression with the final test error and with the
  generalisation gap (test - train error); the claim is that only the last
  layer's compression goes with better generalisation (negative rho).
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np
from scipy import stats

ESTIMATORS = (("ebab", "EBAB (adaptive bins)"),
              ("fixed", "fixed-width bins"),
              ("kde", "adaptive KDE"))
COMPRESSION_ESTIMATORS = ("ebab", "fixed", "kde")


def measured(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
  """The eval records that carry the information measures, by step."""
  return sorted((r for r in history if "ixt_ebab_1" in r),
                key=lambda r: r["step"])


def num_layers(records: list[dict[str, Any]]) -> int:
  return max(int(m.group(1)) for k in records[0]
             if (m := re.fullmatch(r"ixt_ebab_(\d+)", k)))


def compression(records: list[dict[str, Any]], est: str, layer: int
                ) -> tuple[float, float, float, float]:
  """`(peak, final, peak - final, late)` of I(X;T_layer) in bits.

  `late` is the compression after fitting: the peak of I(X;T) from the
  first measurement where I(T;Y) of the layer reaches 90% of its final
  value, minus the final I(X;T) (an early collapse of I(X;T) before the
  layer carries label information, e.g. ReLU units dying in the first
  epochs, does not count).
  """
  values = np.asarray([r[f"ixt_{est}_{layer}"] for r in records])
  ity = np.asarray([r[f"ity_{est}_{layer}"] for r in records])
  fit = int(np.argmax(ity >= 0.9 * ity[-1]))
  return (float(values.max()), float(values[-1]),
          float(values.max() - values[-1]),
          float(values[fit:].max() - values[-1]))


def plot_plane(records: list[dict[str, Any]], title: str, path: str) -> None:
  """Three information planes (one per estimator) of one run."""
  layers = num_layers(records)
  steps = np.asarray([r["step"] for r in records], float)
  norm = matplotlib.colors.LogNorm(vmin=max(steps.min(), 1),
                                   vmax=steps.max())
  fig, axes = plt.subplots(1, len(ESTIMATORS), figsize=(16, 4.6))
  for ax, (est, label) in zip(axes, ESTIMATORS):
    for layer in range(1, layers + 1):
      x = [r[f"ixt_{est}_{layer}"] for r in records]
      y = [r[f"ity_{est}_{layer}"] for r in records]
      ax.plot(x, y, color="grey", lw=0.6, zorder=1)
      sc = ax.scatter(x, y, c=steps, cmap="viridis", norm=norm, s=14,
                      zorder=2)
      ax.annotate(f"T{layer}", (x[-1], y[-1]), fontsize=8,
                  xytext=(3, -9), textcoords="offset points")
    ax.set(xlabel="I(X;T) bits", ylabel="I(T;Y) bits", title=label)
  fig.colorbar(sc, ax=axes, label="epoch")
  fig.suptitle(title)
  fig.savefig(path, dpi=100)
  plt.close(fig)


def compression_table(runs: dict[str, dict[int, Any]]) -> tuple[str, dict]:
  """Markdown and numbers: peak / final / compression per arm and layer."""
  data = {}
  for arm, by_seed in runs.items():
    recs = {s: measured(r.history) for s, r in by_seed.items()}
    layers = num_layers(next(iter(recs.values())))
    data[arm] = {est: [[compression(r, est, l) for r in recs.values()]
                       for l in range(1, layers + 1)]
                 for est in COMPRESSION_ESTIMATORS}
  layers = len(next(iter(data.values()))["ebab"])
  lines = []
  for est in COMPRESSION_ESTIMATORS:
    lines += [f"Compression of I(X;T) ({est.upper()}), bits, mean over "
              "seeds: peak over training -> final; **late** compression "
              "(peak after I(T;Y) reached 90% of its final value, minus "
              "final) +- std over seeds.",
              "", "| arm | " + " | ".join(f"T{l}" for l in
                                          range(1, layers + 1)) + " |",
              "|---|" + "---|" * layers]
    for arm, by_est in data.items():
      cells = []
      for per_seed in by_est[est]:
        a = np.asarray(per_seed)
        cells.append(f"{a[:, 0].mean():.2f} -> {a[:, 1].mean():.2f}; "
                     f"**{a[:, 3].mean():.2f}** +- {a[:, 3].std():.2f}")
      lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    lines.append("")
  return "\n".join(lines), data


def generalisation_table(runs: dict[str, dict[int, Any]]) -> str:
  """Spearman rho of each layer's compression with test error / gap."""
  rows = []
  for by_seed in runs.values():
    for r in by_seed.values():
      recs = measured(r.history)
      rows.append((recs, r.final["test_error"], r.final["gen_gap"]))
  layers = num_layers(rows[0][0])
  lines = ["Spearman rank correlation over all "
           f"{len(rows)} runs (arms x seeds) of a layer's late compression "
           "(see compression.md) with the final test error and with the "
           "generalisation gap (test - train error); negative = more "
           "compression goes with better generalisation.", "",
           "| layer | " + " | ".join(
               f"{e} vs {t}" for e in ("EBAB", "fixed", "aKDE")
               for t in ("test error", "gap")) + " |",
           "|---|" + "---|" * 6]
  for l in range(1, layers + 1):
    cells = []
    for est in COMPRESSION_ESTIMATORS:
      comp = [compression(recs, est, l)[3] for recs, _, _ in rows]
      for target in (1, 2):
        vals = [row[target] for row in rows]
        if np.ptp(comp) == 0:
          cells.append("n/a (no compression)")
          continue
        rho, p = stats.spearmanr(comp, vals)
        cells.append(f"{rho:+.2f} (p={p:.2f})")
    lines.append(f"| T{l} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def artifacts(configs: dict[str, Any], workdir: str,
              runs: dict[str, dict[int, Any]]) -> dict[str, str]:
  del configs
  paths = {}
  for arm, by_seed in runs.items():
    seed = min(by_seed)
    name = arm.replace(" ", "_")
    path = os.path.join(workdir, f"info_plane_{name}.png")
    plot_plane(measured(by_seed[seed].history),
               f"{arm}, seed {seed}: 12-10-7-5-4-3-2 on the 12-bit task", path)
    paths[f"plane_{name}"] = path
  table, data = compression_table(runs)
  paths["compression"] = os.path.join(workdir, "compression.md")
  with open(paths["compression"], "w", encoding="utf-8") as f:
    f.write(table)
  paths["compression_json"] = os.path.join(workdir, "compression.json")
  with open(paths["compression_json"], "w", encoding="utf-8") as f:
    json.dump(data, f)
  paths["generalisation"] = os.path.join(workdir, "generalisation.md")
  with open(paths["generalisation"], "w", encoding="utf-8") as f:
    f.write(generalisation_table(runs))
  return paths

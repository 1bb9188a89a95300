"""The grok_corrupted figures (`config.study.artifacts`).

* `artifacts` (main study): `ipr_pruning.png`, the final IPR histogram of
  every arm and, for the weight-decay-free arm (the paper's coexistence
  phase), accuracies against the fraction of neurons pruned from the lowest
  IPR, from the highest, and in random order (the official notebook's
  "Pruning" figure); `pruning.json` holds the curves, `pruning.md` a table
  of them at every 10% of the neurons.
* `artifacts` also writes `curves.png`: accuracies and mean IPR against
  the optimizer step for every arm (first seed), as the notebook's curves.
* `phase_diagram` (phase study): `phase_diagram.png`, corrupted-train
  accuracy (memorisation), test accuracy and the share of high-IPR neurons
  over corruption fraction x weight decay.
"""

from __future__ import annotations

import json
import os
from typing import Any

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from algos.analysis import grok_ipr
from common import config as config_lib
from common.protocols import supervised
from experiments.grok_corrupted import evaluate

PRUNE_ARM = "wd=0"
CURVES = (("corrupted_train_acc", "corrupted train (vs corrupted labels)"),
          ("clean_train_acc", "clean train"),
          ("test_acc", "test"))


def _restore(configs, arm, by_seed):
  seed = sorted(by_seed)[0]
  cfg = config_lib.apply_overrides(configs[arm], {"seed": seed})
  setup, state = supervised.restore(cfg, by_seed[seed].workdir)
  return cfg, setup, state


def pruning_curves(cfg, setup, state, step: int = 10) -> dict[str, Any]:
  """`{order: {metric: [K]}, "fraction": [K]}` for the three orders."""
  import jax  # pylint: disable=g-import-not-at-top
  params = jax.device_get(state.params)
  iprs = np.asarray(grok_ipr.neuron_ipr(params, cfg.eval.ipr_power))
  data = evaluate.data_arrays(cfg)
  fn = evaluate.logits_fn(setup, state, data["x"])
  counts = np.arange(0, len(iprs) + 1, step)
  out = {"fraction": (counts / len(iprs)).tolist()}
  for order in grok_ipr.ORDERS:
    curve = grok_ipr.pruning_curve(
        fn, params, grok_ipr.prune_order(iprs, order, cfg.seed), counts, data)
    out[order] = {k: v.tolist() for k, v in curve.items()}
  return out


def pruning_table(curves: dict[str, Any], arm: str, seed: int) -> str:
  """Markdown: accuracies (%) after pruning 0, 10, ..., 100% of the neurons
  in each order (corrupted train vs corrupted label / clean train / test)."""
  lines = [f"Pruning the neurons of arm {arm!r} (seed {seed}), accuracies % "
           "as corrupted train vs corrupted label / clean train / test.", "",
           "| pruned | " + " | ".join(grok_ipr.ORDERS) + " |",
           "|---|" + "---|" * len(grok_ipr.ORDERS)]
  fractions = np.asarray(curves["fraction"])
  for target in np.linspace(0, 1, 11):
    i = int(np.argmin(np.abs(fractions - target)))
    cells = [" / ".join(f"{curves[o][k][i]:.1f}" for k, _ in CURVES)
             for o in grok_ipr.ORDERS]
    lines.append(f"| {100 * fractions[i]:.0f}% | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def plot_steps(runs: dict[str, dict[int, Any]], path: str) -> None:
  """Eval metrics of each arm's first seed against the optimizer step."""
  keys = (("train_acc", "train acc vs its labels (%)"),
          ("corrupted_train_acc", "corrupted train vs corrupted label (%)"),
          ("test_acc", "test acc (%)"), ("ipr_mean", "mean neuron IPR"))
  fig, axes = plt.subplots(1, len(keys), figsize=(18, 3.6))
  for arm, by_seed in runs.items():
    history = [r for r in by_seed[sorted(by_seed)[0]].history
               if "test_acc" in r]
    steps = [r["step"] for r in history]
    for ax, (key, label) in zip(axes, keys):
      ax.plot(steps, [r[key] for r in history], label=arm)
      ax.set(xlabel="step", ylabel=label, xscale="log")
  axes[0].legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def artifacts(configs: dict[str, Any], workdir: str,
              runs: dict[str, dict[int, Any]]) -> dict[str, str]:
  import jax  # pylint: disable=g-import-not-at-top
  plot_steps(runs, os.path.join(workdir, "curves.png"))
  fig, axes = plt.subplots(1, 4, figsize=(19, 4))
  bins = np.linspace(0, 1, 41)
  for arm, by_seed in runs.items():
    cfg, _, state = _restore(configs, arm, by_seed)
    iprs = np.asarray(grok_ipr.neuron_ipr(jax.device_get(state.params),
                                          cfg.eval.ipr_power))
    axes[0].hist(iprs, bins=bins, histtype="step", label=arm)
  axes[0].set(xlabel="neuron IPR (final)", ylabel="# neurons", yscale="log",
              title="IPR of the neurons")
  axes[0].legend(fontsize=7)
  paths = {"curves": os.path.join(workdir, "curves.png")}
  if PRUNE_ARM in runs:
    cfg, setup, state = _restore(configs, PRUNE_ARM, runs[PRUNE_ARM])
    curves = pruning_curves(cfg, setup, state)
    paths["pruning"] = os.path.join(workdir, "pruning.json")
    with open(paths["pruning"], "w", encoding="utf-8") as f:
      json.dump(curves, f)
    paths["pruning_table"] = os.path.join(workdir, "pruning.md")
    with open(paths["pruning_table"], "w", encoding="utf-8") as f:
      f.write(pruning_table(curves, PRUNE_ARM, cfg.seed))
    xi = cfg.data.kwargs.corruption
    for ax, order, title in zip(axes[1:], grok_ipr.ORDERS,
                                ("pruned from the lowest IPR",
                                 "pruned from the highest IPR",
                                 "pruned in random order")):
      for key, label in CURVES:
        ax.plot(curves["fraction"], curves[order][key], label=label)
      ax.axhline(100 * (1 - xi), color="grey", ls=":",
                 label="100(1 - xi)")
      ax.set(xlabel="fraction of neurons pruned", ylabel="accuracy (%)",
             title=f"{PRUNE_ARM}: {title}", ylim=(0, 102))
    axes[1].legend(fontsize=7)
  fig.tight_layout()
  paths["figure"] = os.path.join(workdir, "ipr_pruning.png")
  fig.savefig(paths["figure"], dpi=110)
  plt.close(fig)
  return paths


def step_curves(configs: dict[str, Any], workdir: str,
                runs: dict[str, dict[int, Any]]) -> dict[str, str]:
  """`curves.png` only (the long runs)."""
  del configs
  path = os.path.join(workdir, "curves.png")
  plot_steps(runs, path)
  return {"curves": path}


def phase_diagram(configs: dict[str, Any], workdir: str,
                  runs: dict[str, dict[int, Any]]) -> dict[str, str]:
  """Heat maps over corruption x weight decay (mean over seeds)."""
  cells = {}
  for arm, by_seed in runs.items():
    key = (float(configs[arm].data.kwargs.corruption),
           float(configs[arm].optim.weight_decay))
    cells[key] = {m: float(np.mean([r.final[m] for r in by_seed.values()]))
                  for m in ("corrupted_train_acc", "test_acc",
                            "ipr_high_frac")}
  xis = sorted({k[0] for k in cells})
  wds = sorted({k[1] for k in cells})
  fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
  for ax, (metric, title) in zip(axes, (
      ("corrupted_train_acc", "corrupted train vs corrupted label %"),
      ("test_acc", "test %"), ("ipr_high_frac", "neurons with IPR>=0.5 %"))):
    grid = np.array([[cells.get((xi, wd), {}).get(metric, np.nan)
                      for wd in wds] for xi in xis])
    im = ax.imshow(grid, origin="lower", vmin=0, vmax=100, cmap="viridis",
                   aspect="auto")
    for i in range(len(xis)):
      for j in range(len(wds)):
        ax.text(j, i, f"{grid[i, j]:.0f}", ha="center", va="center",
                color="w" if grid[i, j] < 60 else "k", fontsize=9)
    ax.set_xticks(range(len(wds)), [f"{w:g}" for w in wds])
    ax.set_yticks(range(len(xis)), [f"{x:g}" for x in xis])
    ax.set(xlabel="weight decay", ylabel="corruption xi", title=title)
    fig.colorbar(im, ax=ax)
  fig.tight_layout()
  path = os.path.join(workdir, "phase_diagram.png")
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return {"figure": path}

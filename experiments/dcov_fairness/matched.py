"""The claim's table: intersectional disparity at matched task loss.

`study.artifacts = "experiments.dcov_fairness.matched:artifacts"` writes
`matched.md`: for each regulariser, its lambda sweep gives a curve of
(test task loss, disparity) points per seed; the disparity at a target
task loss is read off that curve by linear interpolation between the two
sweep points around the target (sorted by task loss). Targets are the
unregularised run's loss times 1 + x (x in `INCREASES`), per seed. A cell
is "-" when the sweep does not reach the target. The last column counts
the seeds where JdCov / CCdCov is below the marginal sum at that target.
Also the JS-calibrated lambda (`protected.calibrate_lambda`, 5% loss
tolerance) of each regulariser, per seed.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import numpy as np

from algos.fairness import protected
from common.study import artifacts as artifacts_lib

KINDS = ("marginal", "JdCov", "CCdCov")
# Relative task-loss increases read off each sweep. BCE is capped at log 2
# (a constant prediction, +19% here), so classification uses smaller ones.
INCREASES = {"mse": (0.05, 0.10, 0.20, 0.50, 1.00),
             "bce": (0.01, 0.02, 0.05, 0.10, 0.15)}
DISPARITY = ("js_inter_max", "js_inter", "js_marginal_max")


def _task_metric(finals) -> str:
  any_run = next(iter(next(iter(finals.values())).values()))
  return "mse" if "mse" in any_run else "bce"


def sweep(finals, kind: str, seed: int, metric: str, task: str
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """`(lambdas, task losses, disparities)` of one regulariser and seed,
  with the unregularised run as lambda = 0."""
  pts = [(0.0, finals["none"][seed][task], finals["none"][seed][metric])]
  for arm, by_seed in finals.items():
    if arm.startswith(kind + " lam=") and seed in by_seed:
      lam = float(arm.split("lam=")[1])
      pts.append((lam, by_seed[seed][task], by_seed[seed][metric]))
  pts.sort()
  return tuple(np.array(v) for v in zip(*pts))


def at_loss(loss: np.ndarray, value: np.ndarray, target: float) -> float:
  """The disparity where the (loss-sorted) curve crosses `target`."""
  order = np.argsort(loss)
  loss, value = loss[order], value[order]
  if target < loss[0] or target > loss[-1]:
    return float("nan")
  return float(np.interp(target, loss, value))


def markdown(finals: Mapping[str, Mapping[int, Mapping[str, float]]]) -> str:
  task = _task_metric(finals)
  seeds = sorted(finals["none"])
  lines = []
  for metric in DISPARITY:
    lines += [f"**{metric} at matched test {task}** (mean over seeds "
              f"{seeds}; the target is the unregularised {task} of each "
              "seed times 1 + x)", "",
              "| task loss +x | " + " | ".join(KINDS)
              + " | seeds JdCov < marginal | seeds CCdCov < marginal |",
              "|---" * (len(KINDS) + 3) + "|"]
    for inc in INCREASES[task]:
      vals = {k: [] for k in KINDS}
      for s in seeds:
        target = finals["none"][s][task] * (1 + inc)
        for k in KINDS:
          lam, loss, val = sweep(finals, k, s, metric, task)
          vals[k].append(at_loss(loss, val, target))
      cells = []
      for k in KINDS:
        v = np.array(vals[k])
        cells.append("-" if np.isnan(v).any() else f"{v.mean():.4f}")
      wins = []
      for k in ("JdCov", "CCdCov"):
        a, b = np.array(vals[k]), np.array(vals["marginal"])
        ok = ~(np.isnan(a) | np.isnan(b))
        wins.append(f"{int(np.sum(a[ok] < b[ok]))}/{int(ok.sum())}")
      lines.append(f"| +{inc:.0%} | " + " | ".join(cells) + " | "
                   + " | ".join(wins) + " |")
    lines.append("")
  lines += ["**JS-calibrated lambda** (lowest `js_inter` with test "
            f"{task} within 5% of the unregularised run), per seed", "",
            "| regulariser | " + " | ".join(f"seed {s}" for s in seeds)
            + " |", "|---" * (len(seeds) + 1) + "|"]
  for k in KINDS:
    cells = []
    for s in seeds:
      lam, loss, js = sweep(finals, k, s, "js_inter", task)
      cells.append(f"{protected.calibrate_lambda(lam, loss, js, 0.05):g}")
    lines.append(f"| {k} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def artifacts(configs: Any, workdir: str,
              runs: Mapping[str, Mapping[int, Any]]) -> dict[str, str]:
  """Writes `matched.md` from the study's runs (arm -> seed -> RunResult)."""
  del configs
  finals = artifacts_lib.final_metrics(runs)
  path = artifacts_lib.write_markdown(workdir, "matched.md", markdown(finals))
  return {"matched": path, "tradeoff": plot(finals, workdir)}


def plot(finals, workdir: str) -> str:
  """`tradeoff.png`: mean test task loss vs mean disparity of each sweep."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  task = _task_metric(finals)
  seeds = sorted(finals["none"])
  fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
  for ax, metric in zip(axes, ("js_inter_max", "js_inter")):
    for kind, style in zip(KINDS, ("s--", "o-", "^-")):
      curves = [sweep(finals, kind, s, metric, task) for s in seeds]
      loss = np.mean([c[1] for c in curves], axis=0)
      val = np.mean([c[2] for c in curves], axis=0)
      ax.plot(loss, val, style, label=kind)
    ax.set_xlabel(f"test {task}")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
  axes[0].legend()
  fig.tight_layout()
  path = os.path.join(workdir, "tradeoff.png")
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path

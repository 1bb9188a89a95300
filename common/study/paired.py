"""Paired comparisons of a study's arms over seeds (`study.artifacts` hook).

Every arm of a study runs the same seeds (same initial draw of the shared
parameters, same data order), so arms are compared seed by seed: for each
pair of arms (A, B) and a metric, the differences `d_s = B_s - A_s` give

* the mean difference and its sample std,
* wins / losses / ties of B (lower is better for errors: `lower_is_better`),
* the two-sided exact sign test p-value (ties dropped),
* the two-sided paired t-test p-value (`scipy.stats.ttest_rel`).

Use it as `config.study.artifacts = "common.study.paired:artifacts"`; it
writes `paired.md` next to `results.md`, for `config.study.metrics[0]`
(the study's headline metric) with lower = better unless the metric's name
contains "acc".
"""

from __future__ import annotations

import itertools
import math
import os
from typing import Any, Sequence

import numpy as np
from scipy import stats

from common.study import artifacts as artifacts_lib


def sign_test_p(wins: int, losses: int) -> float:
  """Two-sided exact binomial sign test p-value (ties excluded)."""
  n = wins + losses
  if n == 0:
    return 1.0
  k = min(wins, losses)
  tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0 ** n
  return float(min(1.0, 2.0 * tail))


def compare(a: Sequence[float], b: Sequence[float],
            lower_is_better: bool = True) -> dict[str, float]:
  """Paired statistics of `b` against `a` (same seed order)."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  d = b - a
  better = d < 0 if lower_is_better else d > 0
  worse = d > 0 if lower_is_better else d < 0
  wins, losses = int(better.sum()), int(worse.sum())
  t_p = float("nan")
  if d.size > 1 and np.std(d) > 0:
    t_p = float(stats.ttest_rel(b, a).pvalue)
  return {"mean_diff": float(d.mean()),
          "std_diff": float(d.std(ddof=1)) if d.size > 1 else float("nan"),
          "wins": wins, "losses": losses, "ties": int(d.size - wins - losses),
          "sign_p": sign_test_p(wins, losses), "t_p": t_p}


def table(finals: dict[str, dict[int, dict[str, float]]], metric: str,
          lower_is_better: bool = True) -> str:
  """Markdown: one row per pair of arms (A, B), B compared with A."""
  rows = [f"| A | B | mean(B - A) {metric} | std | B better / worse / tied |"
          " sign test p | paired t-test p |", "|---" * 7 + "|"]
  for a, b in itertools.combinations(finals, 2):
    seeds = sorted(set(finals[a]) & set(finals[b]))
    r = compare([finals[a][s][metric] for s in seeds],
                [finals[b][s][metric] for s in seeds], lower_is_better)
    rows.append(f"| {a} | {b} | {r['mean_diff']:+.2f} | {r['std_diff']:.2f}"
                f" | {r['wins']} / {r['losses']} / {r['ties']} | "
                f"{r['sign_p']:.3f} | {r['t_p']:.3f} |")
  return "\n".join(rows)


def artifacts(configs: dict[str, Any], workdir: str,
              runs: dict[str, dict[int, Any]]) -> dict[str, str]:
  """Writes `paired.md` (the study's first metric, every pair of arms)."""
  metric = list(next(iter(configs.values())).study.metrics)[0]
  lower = "acc" not in metric
  finals = artifacts_lib.final_metrics(runs)
  command = ""
  study_md = os.path.join(workdir, "results.md")
  if os.path.exists(study_md):
    with open(study_md, encoding="utf-8") as f:
      command = f.readline().strip() + "\n\n"
  seeds = sorted({s for by_seed in runs.values() for s in by_seed})
  path = os.path.join(workdir, "paired.md")
  with open(path, "w", encoding="utf-8") as f:
    f.write(command + f"Paired over seeds {seeds} (same seed = same data "
            f"order and initial draw): `{metric}`, "
            f"{'lower' if lower else 'higher'} is better; two-sided exact "
            "sign test (ties dropped) and paired t-test.\n\n"
            + table(finals, metric, lower) + "\n")
  return {"paired": path}

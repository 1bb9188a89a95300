"""The study's per-fold table: each arm's metric on every held-out fold, and
how often each AnyLoss arm beats BCE on the metric it optimises.

`study.artifacts = "experiments.anyloss.per_fold:artifacts"` writes
`per_fold.md` into the study folder (seed s = fold s mod 10).
"""

from __future__ import annotations

from typing import Any, Mapping

from common.study import artifacts as artifacts_lib

# arm -> the metric its loss optimises (compared with BCE's on it).
TARGETS = {"AnyLoss(F1)": "f1", "AnyLoss(BAcc)": "balanced_accuracy",
           "AnyLoss(G-mean)": "g_mean"}
BASELINE = "BCE"


def wins(runs: Mapping[str, Mapping[int, Mapping[str, float]]], arm: str,
         metric: str) -> tuple[int, int, int]:
  """(folds where `arm` > BCE on `metric`, ties, folds compared)."""
  seeds = sorted(set(runs.get(arm, {})) & set(runs.get(BASELINE, {})))
  better = sum(runs[arm][s][metric] > runs[BASELINE][s][metric]
               for s in seeds)
  ties = sum(runs[arm][s][metric] == runs[BASELINE][s][metric]
             for s in seeds)
  return better, ties, len(seeds)


def markdown(runs: Mapping[str, Mapping[int, Mapping[str, float]]]) -> str:
  """Per-fold F1 / target metric of every arm, then the win counts."""
  arms = [a for a in (BASELINE, *TARGETS) if a in runs]
  seeds = sorted({s for a in arms for s in runs[a]})
  lines = ["**Per held-out fold (seed): F1 of each arm**", "",
           "| seed | " + " | ".join(arms) + " |",
           "|---" * (len(arms) + 1) + "|"]
  for s in seeds:
    cells = [f"{runs[a][s]['f1']:.3f}" if s in runs[a] else "-"
             for a in arms]
    lines.append(f"| {s} | " + " | ".join(cells) + " |")
  lines += ["", "**AnyLoss vs BCE, fold by fold, on the metric the loss "
            "optimises**", "", "| arm | metric | folds better than BCE | "
            "ties |", "|---|---|---|---|"]
  for arm, metric in TARGETS.items():
    if arm in runs and BASELINE in runs:
      better, ties, n = wins(runs, arm, metric)
      lines.append(f"| {arm} | {metric} | {better}/{n} | {ties} |")
  return "\n".join(lines) + "\n"


def artifacts(configs: Any, workdir: str,
              runs: Mapping[str, Mapping[int, Any]]) -> dict[str, str]:
  """Writes `per_fold.md` from the study's runs (arm -> seed -> RunResult)."""
  del configs
  finals = artifacts_lib.final_metrics(runs)
  return {"per_fold": artifacts_lib.write_markdown(workdir, "per_fold.md",
                                                   markdown(finals))}

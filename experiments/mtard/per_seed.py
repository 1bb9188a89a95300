"""The study's per-seed table: clean / PGD-20 accuracy of every arm, the
claim checked seed by seed, and B-MTARD's balance state at the end.

`study.artifacts = "experiments.mtard.per_seed:artifacts"` writes
`per_seed.md` into the study folder. The balance state (teacher
temperatures, loss weights, teacher entropy ratio) is the last logged
training step of each B-MTARD student (`<arm>/seed_<k>/student/
metrics.jsonl`).
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from common.core import logging_utils
from common.study import artifacts as artifacts_lib

BASE = "PGD-AT"
BALANCE = ("temp_adv", "temp_nat", "w_adv", "entropy_ratio")


def _last_train_step(workdir: str) -> dict[str, float]:
  path = os.path.join(workdir, "student", "metrics.jsonl")
  if not os.path.exists(path):
    return {}
  rows = [r for r in logging_utils.read_jsonl(path) if r["split"] == "train"]
  return rows[-1] if rows else {}


def markdown(finals: Mapping[str, Mapping[int, Mapping[str, float]]],
             balance: Mapping[int, Mapping[str, float]]) -> str:
  arms = list(finals)
  seeds = sorted({s for a in arms for s in finals[a]})
  cell = lambda a, s, m: (f"{finals[a][s][m]:.2f}" if s in finals[a]
                          else "-")
  lines = ["**Per seed: clean % / PGD-20 % of each arm**", "",
           "| seed | " + " | ".join(arms) + " |", "|---" * (len(arms) + 1)
           + "|"]
  for s in seeds:
    lines.append(f"| {s} | " + " | ".join(
        f"{cell(a, s, 'clean_acc')} / {cell(a, s, 'pgd20_acc')}"
        for a in arms) + " |")
  compared = [a for a in arms if a not in (BASE, "Natural")]
  if BASE in finals and compared:
    lines += ["", f"**Each distilled arm minus {BASE}, seed by seed "
              "(clean, PGD-20 points)**", "", "| arm | " + " | ".join(
                  f"seed {s}" for s in seeds) + " |",
              "|---" * (len(seeds) + 1) + "|"]
  for a in compared if BASE in finals else ():
    if a in (BASE, "Natural"):
      continue
    diffs = []
    for s in seeds:
      if s in finals[a] and s in finals[BASE]:
        d = [finals[a][s][m] - finals[BASE][s][m]
             for m in ("clean_acc", "pgd20_acc")]
        diffs.append(f"{d[0]:+.2f}, {d[1]:+.2f}")
      else:
        diffs.append("-")
    lines.append(f"| {a} | " + " | ".join(diffs) + " |")
  if balance:
    lines += ["", "**B-MTARD at its last step: teacher temperatures, "
              "robust-loss weight, teacher entropy ratio H_adv / H_nat**",
              "", "| seed | " + " | ".join(BALANCE) + " |",
              "|---" * (len(BALANCE) + 1) + "|"]
    for s, row in sorted(balance.items()):
      lines.append(f"| {s} | " + " | ".join(
          f"{row.get('method/' + k, float('nan')):.3f}" for k in BALANCE)
                   + " |")
  return "\n".join(lines) + "\n"


def artifacts(configs: Any, workdir: str,
              runs: Mapping[str, Mapping[int, Any]]) -> dict[str, str]:
  """Writes `per_seed.md` (arm -> seed -> RunResult)."""
  del configs
  finals = artifacts_lib.final_metrics(runs)
  balanced = [a for a in runs if a.startswith("B-MTARD")]
  balance = {seed: _last_train_step(run.workdir)
             for seed, run in (runs[balanced[0]].items() if balanced
                               else ())}
  path = os.path.join(workdir, "per_seed.md")
  with open(path, "w", encoding="utf-8") as f:
    f.write(markdown(finals, balance))
  return {"per_seed": path}

"""The QARL teacher's steps of a study, counted from its run logs.

The self-paced Gamma teacher (`algos/rl/qarl.py`) logs one "curriculum"
record per update in each seed's `metrics.jsonl` (status "moved", "frozen",
"kept (...)" or "failed (...)", the KL to the old distribution, the
concentration nu). This prints a markdown table of them per seed:

    python -m experiments.qarl.teacher_log runs/qarl-pendulum \
        > experiments/qarl/results/pendulum_teacher.md

(the workdir of `regjax run qarl ...`; the QARL arm's seeds are found under
it as `<...>/QARL/seed_<k>/metrics.jsonl`).
"""

from __future__ import annotations

import glob
import os
import sys

import numpy as np

from common.core import logging_utils


def seed_logs(workdir: str, arm: str = "QARL") -> dict[int, list[dict]]:
  """`{seed: curriculum records}` of `arm` under a study workdir."""
  pattern = os.path.join(workdir, "**", arm, "seed_*", "metrics.jsonl")
  paths = sorted(glob.glob(pattern, recursive=True))
  if not paths:
    raise FileNotFoundError(f"no {arm}/seed_*/metrics.jsonl under "
                            f"{workdir!r}: give the workdir of `regjax run "
                            "qarl`")
  return {int(os.path.basename(os.path.dirname(p))[len("seed_"):]):
          [r for r in logging_utils.read_jsonl(p)
           if r["split"] == "curriculum"] for p in paths}


def _span(values, fmt: str) -> str:
  if not values:
    return "-"
  lo, hi = min(values), max(values)
  return format(lo, fmt) if lo == hi else f"{lo:{fmt}}-{hi:{fmt}}"


def table(logs: dict[int, list[dict]]) -> str:
  """Per seed: updates, frozen / moved / kept / failed, the iteration of the
  first move, the KL of the moves (range, median), the final nu and mean
  temperature."""
  lines = ["| seed | updates | frozen | moved | kept | failed | first move "
           "(iteration) | KL of the moves (max 0.5): range | median | final "
           "nu | final mean temperature |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
  for seed, recs in sorted(logs.items()):
    status = [r["status"].split(" ")[0] for r in recs]
    moves = [r for r in recs if r["status"].startswith("moved")]
    last = recs[-1] if recs else {}
    kls = [r["kl_old"] for r in moves]
    lines.append(
        f"| {seed} | {len(recs)} | {status.count('frozen')} | "
        f"{len(moves)} | {status.count('kept')} | {status.count('failed')} "
        f"| {moves[0]['step'] if moves else '-'} | "
        f"{_span(kls, '.2f')} | "
        f"{f'{np.median(kls):.2f}' if kls else '-'} | "
        f"{last.get('conc', float('nan')):.2f} | "
        f"{last.get('mean_temp', float('nan')):.4f} |")
  return "\n".join(lines)


def main(argv: list[str]) -> None:
  if len(argv) != 2:
    sys.exit("usage: python -m experiments.qarl.teacher_log <workdir>")
  command = "python -m experiments.qarl.teacher_log " + argv[1]
  print(f"Command: `{command}` (on the workdir the study command above "
        f"wrote)\n\nQARL teacher updates per seed (each seed's "
        f"`metrics.jsonl`, split `curriculum`)\n\n{table(seed_logs(argv[1]))}")


if __name__ == "__main__":
  main(sys.argv)

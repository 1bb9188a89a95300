"""The EAD study's per-threshold table (`config.study.artifacts`):
threshold, large-model share, compute relative to the large model, EAD
accuracy and random switching's accuracy at the same share, mean +- std
over seeds; the first seed's `ead_tradeoff.png` is copied beside it."""

from __future__ import annotations

import os
import shutil
from typing import Any

import numpy as np

from common.study import artifacts as artifacts_lib


def _cell(values) -> str:
  return artifacts_lib.mean_std_cell(values, ".3f")


def artifacts(configs: dict[str, Any], workdir: str,
              runs: dict[str, dict[int, Any]]) -> dict[str, str]:
  paths = {}
  for arm, by_seed in runs.items():
    finals = artifacts_lib.final_metrics({arm: by_seed})[arm]
    first = finals[min(finals)]
    ks = sorted(int(k.split("/")[1][1:]) for k in first
                if k.startswith("ead/t") and k.endswith("/acc"))
    col = lambda key: [f[key] for f in finals.values()]
    rows = ["| threshold (nats) | large-model share | compute vs large | "
            "EAD accuracy | random switching, same share |",
            "|---|---|---|---|---|",
            f"| (small alone) | 0 | {_cell(col('compute_ratio'))} | "
            f"{_cell(col('small/acc'))} | - |",
            f"| (large alone) | 1 | 1 | {_cell(col('large/acc'))} | - |"]
    for k in ks:
      rows.append(
          f"| {first[f'ead/t{k}/threshold']:.2f} | "
          f"{_cell(col(f'ead/t{k}/share'))} | "
          f"{_cell(col(f'ead/t{k}/compute'))} | "
          f"{_cell(col(f'ead/t{k}/acc'))} | "
          f"{_cell(col(f'random/t{k}/acc'))} |")
    monitor = configs[arm].ead.monitor
    text = (f"Arm {arm}, seeds {sorted(finals)}; entropy monitored: "
            f"{monitor} model; compute = decoding FLOPs relative to the "
            "large model alone (2 x non-embedding parameters per token of "
            "each model that runs).\n\n" + "\n".join(rows) + "\n")
    name = "sweep.md" if len(runs) == 1 else f"sweep_{arm}.md"
    text = artifacts_lib.study_command(workdir) + text
    paths[name] = artifacts_lib.write_markdown(workdir, name, text)
    plot = os.path.join(workdir, arm, f"seed_{min(finals)}",
                        "ead_tradeoff.png")
    if os.path.exists(plot):
      dest = os.path.join(workdir, "ead_tradeoff.png" if len(runs) == 1
                          else f"ead_tradeoff_{arm}.png")
      shutil.copyfile(plot, dest)
      paths[os.path.basename(dest)] = dest
  return paths

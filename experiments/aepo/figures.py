"""AEPO study artifacts: per-step entropy curves (PNG) and the tracking
table (mean |H - target| / target over the last half of RL training),
read from each run's `rl/metrics.jsonl`."""

from __future__ import annotations

import json
import os
from typing import Any, Mapping

import numpy as np

from common.study import artifacts as artifacts_lib

KEY = "method/neg_logp"        # AEPO's controlled estimate (official)
TRUE = "method/entropy"        # exact token entropy of the update batch


def curves(run_dir: str) -> dict[str, np.ndarray]:
  """step, estimate and exact entropy, reward of one run's RL stage."""
  rows = []
  with open(os.path.join(run_dir, "rl", "metrics.jsonl"),
            encoding="utf-8") as f:
    for line in f:
      r = json.loads(line)
      if r.get("split") == "train" and KEY in r:
        rows.append(r)
  get = lambda k: np.asarray([r.get(k, np.nan) for r in rows], float)
  return {"step": get("step"), "estimate": get(KEY), "entropy": get(TRUE),
          "reward": get("method/reward")}


def _target(config: Any) -> float | None:
  if config.method.name != "aepo":
    return None
  return float(config.method.aepo.target_entropy)


def artifacts(configs: Mapping[str, Any], workdir: str,
              runs: Mapping[str, Mapping[int, Any]]) -> dict[str, str]:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, 2, figsize=(11, 4))
  lines = ["| arm | seed | target | H first 5 steps | H last half | "
           "abs(H - target) / target, last half | reward last half |",
           "|---|---|---|---|---|---|---|"]
  colors = {}
  for arm, by_seed in runs.items():
    target = _target(configs[arm])
    for seed, run in sorted(by_seed.items()):
      c = curves(run.workdir)
      n = len(c["step"])
      if not n:
        continue
      half = slice(n // 2, n)
      h_last = float(np.nanmean(c["estimate"][half]))
      dev = (float(np.nanmean(np.abs(c["estimate"][half] - target)))
             / target if target else float("nan"))
      lines.append(
          f"| {arm} | {seed} | {'-' if target is None else target} | "
          f"{np.nanmean(c['estimate'][:5]):.3f} | {h_last:.3f} | "
          f"{'-' if target is None else f'{dev:.2f}'} | "
          f"{np.nanmean(c['reward'][half]):.3f} |")
      color = colors.setdefault(arm, f"C{len(colors)}")
      label = arm if seed == min(by_seed) else None
      axes[0].plot(c["step"], c["estimate"], color=color, label=label,
                   alpha=0.8)
      axes[1].plot(c["step"], c["entropy"], color=color, label=label,
                   alpha=0.8)
      if target is not None and seed == min(by_seed):
        axes[0].axhline(target, color=color, ls="--", lw=0.8)
  axes[0].set(xlabel="RL step", ylabel="nats / token",
              title="-mean log pi(o_t) (AEPO's estimate; dashed: targets)")
  axes[1].set(xlabel="RL step", ylabel="nats / token",
              title="exact token entropy of the update batch")
  axes[0].legend(fontsize=8)
  fig.tight_layout()
  png = os.path.join(workdir, "entropy_curves.png")
  fig.savefig(png, dpi=110)
  plt.close(fig)
  md = artifacts_lib.write_markdown(workdir, "entropy_tracking.md",
                                    "\n".join(lines) + "\n")
  return {"entropy_curves": png, "entropy_tracking": md}

"""Per-seed finals and the old classes' accuracy by hardness.

`study.artifacts = "experiments.happy.per_class:artifacts"` writes
`per_class.md` into the study folder:

* each arm's last-stage All / Old / New accuracy on every seed;
* from each run's last-stage model (restored with its transition), the
  Hungarian-matched (v2) accuracy of every old class on the last stage's
  test set, and of the *hardest* old class: the one whose prototype has
  the highest mean cosine similarity to the other seen prototypes in that
  run's `method_state` (Happy's hardness; the SimGCD arm keeps no
  prototypes, so its row uses the Happy run of the same seed).
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import jax
import numpy as np

from common import config as config_lib
from common.eval import category_discovery as cd_eval
from common.eval import evaluators
from common.protocols import continual_gcd
from common.protocols import supervised

KEYS = ("final/all_acc", "final/old_acc", "final/new_acc")


def _last_stage(config, workdir) -> tuple[np.ndarray, np.ndarray, Any]:
  """(per-class v2 accuracy [K], true classes present, method_state)."""
  last = len(config.continual.stages) - 1
  cfg = continual_gcd.stage_config(config, last)
  extras = continual_gcd.stage_extras(config, workdir, last)
  setup, state = supervised.restore(
      cfg, os.path.join(workdir, f"stage_{last}"), extras)
  logits, labels, mask = evaluators.eval_arrays(setup, state)
  y, pred = labels[mask], logits[mask].argmax(-1)
  correct = cd_eval.hungarian_map(y, pred)[pred] == y
  k = logits.shape[1]
  acc = np.array([correct[y == c].mean() if (y == c).any() else np.nan
                  for c in range(k)])
  return acc, jax.device_get(state.method_state)


def markdown(configs, runs) -> str:
  arms = list(runs)
  lines = ["**Last stage, every seed: All / Old / New**", "",
           "| arm | seed | All | Old | New |", "|---|---|---|---|---|"]
  for arm in arms:
    for seed, run in sorted(runs[arm].items()):
      cells = " | ".join(f"{run.final.get(k, float('nan')):.3f}"
                         for k in KEYS)
      lines.append(f"| {arm} | {seed} | {cells} |")
  per = {}
  for arm in arms:
    for seed, run in sorted(runs[arm].items()):
      cfg = config_lib.apply_overrides(configs[arm], {"seed": seed})
      per[arm, seed] = _last_stage(cfg, run.workdir)
  num_old = cd_eval.num_old_classes(next(iter(configs.values())))
  lines += ["", "**Last stage, old classes: accuracy of each (v2), and of "
            "the hardest one (highest prototype hardness in the Happy run "
            "of that seed)**", "",
            "| arm | seed | " + " | ".join(f"class {c}" for c in
                                         range(num_old))
            + " | hardest | its accuracy |", "|---" * (num_old + 4) + "|"]
  for arm in arms:
    for seed in sorted(runs[arm]):
      acc, ms = per[arm, seed]
      ref = per.get(("Happy", seed), (None, ms))[1]
      hardest = int(np.argmax(np.asarray(ref["hardness"])[:num_old]))
      cells = " | ".join(f"{a:.3f}" for a in acc[:num_old])
      lines.append(f"| {arm} | {seed} | {cells} | {hardest} | "
                   f"{acc[hardest]:.3f} |")
  return "\n".join(lines) + "\n"


def artifacts(configs: Mapping[str, Any], workdir: str,
              runs: Mapping[str, Mapping[int, Any]]) -> dict[str, str]:
  """Writes `per_class.md` into the study folder."""
  path = os.path.join(workdir, "per_class.md")
  with open(path, "w", encoding="utf-8") as f:
    f.write(markdown(configs, runs))
  return {"per_class": path}

"""Study artifacts of adapt_unlearn: sample grids and share vs steps.

`artifacts(configs, workdir, runs)` (the study's `study.artifacts` hook):

* `samples_seed<k>.png`: rows of 16 samples for the same latents (the
  evaluator's first eval latents; a column is one latent): the pretrained
  GAN, adapted model 0, then every arm's unlearnt GAN in the order of
  `study.arms`, for each arm's lowest seed `k` (the pretrained and adapted
  rows are shared by the arms of a seed);
* `results/<study>_curve.md` in the experiment folder: the unwanted
  digit's class share after every evaluated number of unlearning steps,
  mean over seeds, per arm.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from common import config as config_lib
from common.eval import gan_eval
from common.protocols import runs as runs_lib
from common.protocols import staged

_COUNT = 16


def _png(rows: list[np.ndarray], path: str) -> str:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  # A grey 1-pixel frame around every sample keeps neighbours apart.
  framed = [np.pad(r[..., 0], ((0, 0), (1, 1), (1, 1)), constant_values=0.0)
            for r in rows]
  grid = np.concatenate([np.concatenate(list(r), axis=1) for r in framed],
                        axis=0)
  pixels = ((np.clip(grid, -1.0, 1.0) + 1.0) * 127.5).round().astype(
      np.uint8)
  big = Image.fromarray(pixels).resize(
      (pixels.shape[1] * 4, pixels.shape[0] * 4), Image.NEAREST)
  big.save(path)
  return path


def _samples(pair: tuple[Any, Any]) -> np.ndarray:
  setup, state = pair
  return gan_eval.generated_images(setup, state)[:_COUNT]


def curve_table(configs: dict[str, Any], runs: dict[str, dict[int, Any]]
                ) -> str:
  """Markdown: unwanted share (mean over seeds) per arm x eval step."""
  any_cfg = next(iter(configs.values()))
  k = any_cfg.method.adapt_unlearn.unwanted
  by_arm = {}
  for arm, by_seed in runs.items():
    rows = {}
    for result in by_seed.values():
      # The unlearning run's evaluations (a served run's result carries
      # none: they live in its finetune/ folder).
      history = runs_lib.eval_history(os.path.join(result.workdir,
                                                   "finetune"))
      for h in history:
        rows.setdefault(int(h["step"]), []).append(h[f"class_share/{k}"])
    by_arm[arm] = {s: float(np.mean(v)) for s, v in rows.items()}
  steps = sorted({s for v in by_arm.values() for s in v})
  seeds = sorted({s for by_seed in runs.values() for s in by_seed})
  lines = [f"Share of digit {k} among the evaluator's samples vs unlearning "
           f"steps, mean over seeds {seeds} (written by "
           "`experiments/adapt_unlearn/figures.py` from the runs of "
           "`results.md`).", "",
           "| arm | " + " | ".join(str(s) for s in steps) + " |",
           "|---|" + "---|" * len(steps)]
  for arm, vals in by_arm.items():
    cells = [f"{vals[s]:.3f}" if s in vals else "-" for s in steps]
    lines.append(f"| {arm} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def artifacts(configs: dict[str, Any], workdir: str,
              runs: dict[str, dict[int, Any]]) -> dict[str, str]:
  paths = {}
  any_cfg = next(iter(configs.values()))
  folder = os.path.join(os.path.dirname(__file__), "results")
  os.makedirs(folder, exist_ok=True)
  curve = os.path.join(folder, f"{any_cfg.study.name}_curve.md")
  with open(curve, "w", encoding="utf-8") as f:
    f.write(curve_table(configs, runs))
  paths["curve"] = curve
  rows_by_seed: dict[int, list[np.ndarray]] = {}
  for arm, by_seed in runs.items():
    if not by_seed:
      continue
    seed = min(by_seed)
    cfg = config_lib.apply_overrides(configs[arm], {"seed": seed})
    stages = staged.restore_stages(cfg, by_seed[seed].workdir)
    rows = rows_by_seed.setdefault(seed, [])
    if not rows:
      rows.append(_samples(stages["pretrained"]))
    if len(rows) == 1 and stages["stage"]:
      rows.append(_samples(stages["stage"][0]))
    rows.append(_samples(stages["finetuned"]))
  for seed, rows in rows_by_seed.items():
    path = os.path.join(folder, f"samples_seed{seed}.png")
    paths[f"samples_seed{seed}"] = _png(rows, path)
  return paths

"""Example episodes as PNG: supports, query, truth and each solver's mask.

`study.artifacts = "experiments.repri.figures:artifacts"`: for the first
seed of every arm (fold), the trained backbone is restored from its run,
`EXAMPLES` episodes per K are drawn as the evaluator draws them (same
seed, so they are the evaluation's first episodes) and solved again, and
`examples_<arm>.png` is written into the study folder: one row per
episode, columns = the K supports with their mask, the query, its true
mask, then the prediction of each solver (foreground in red, ignored
pixels grey).
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import numpy as np
from PIL import Image

from common import config as config_lib
from common.eval import fewshot_segmentation as fewshot
from common.protocols import fewshot_seg
from common.protocols import supervised

EXAMPLES = 4
SCALE = 3   # pixels per image pixel in the PNG


def _overlay(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """uint8 `[H, W, 3]`: the image with mask 1 in red, 255 grey."""
  out = image.astype(np.float32)
  if out.shape[-1] == 1:
    out = np.repeat(out, 3, -1)
  red = np.array([255.0, 0.0, 0.0])
  out[mask == 1] = 0.45 * out[mask == 1] + 0.55 * red
  out[mask == fewshot.IGNORE] = 128.0
  return out.astype(np.uint8)


def episode_grid(images: np.ndarray, masks: np.ndarray,
                 examples: Mapping[int, Any]) -> np.ndarray:
  """uint8 image of the example episodes of every K (rows)."""
  rows = []
  for shots, ex in sorted(examples.items()):
    ep = ex["episodes"]
    width = max(examples) + 1 + 1 + len(ex["preds"])
    for e in range(min(EXAMPLES, len(ex["episodes"].query))):
      cls = ep.cls[e:e + 1]
      sup = fewshot.episodes_lib.episode_masks(masks, ep.support[e:e + 1],
                                               cls)[0]
      qry = fewshot.episodes_lib.episode_masks(masks, ep.query[e:e + 1],
                                               cls)[0]
      tiles = [_overlay(images[s], m) for s, m in zip(ep.support[e], sup)]
      blank = np.full_like(tiles[0], 255)
      tiles += [blank] * (max(examples) - shots)
      q = images[ep.query[e]]
      tiles += [_overlay(q, np.zeros_like(qry)), _overlay(q, qry)]
      tiles += [_overlay(q, p[e].astype(np.uint8))
                for p in ex["preds"].values()]
      assert len(tiles) == width
      rows.append(np.concatenate(
          [np.pad(t, ((1, 1), (1, 1), (0, 0)), constant_values=255)
           for t in tiles], 1))
  grid = np.concatenate(rows, 0)
  return np.kron(grid, np.ones((SCALE, SCALE, 1), np.uint8))


def gains_table(runs: Mapping[str, Mapping[int, Any]],
                shots: tuple[int, ...]) -> str:
  """Per fold and seed: RePRI - prototype and Oracle - RePRI mIoU."""
  pairs = [("RePRI - prototype", "repri", "prototype"),
           ("Oracle - RePRI", "repri_oracle", "repri")]
  head = [f"{k}-shot {label}" for label, _, _ in pairs for k in shots]
  lines = ["mIoU differences (points), per fold (arm) and seed.", "",
           "| fold | seed | " + " | ".join(head) + " |",
           "|---|---|" + "---|" * len(head)]
  for arm, by_seed in runs.items():
    for seed, run in sorted(by_seed.items()):
      f = run.final
      cells = [f"{100 * (f[f'{k}shot/{a}/miou'] - f[f'{k}shot/{b}/miou']):+.1f}"
               for _, a, b in pairs for k in shots]
      lines.append(f"| {arm} | {seed} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def artifacts(configs: Mapping[str, Any], workdir: str,
              runs: Mapping[str, Mapping[int, Any]]) -> dict[str, str]:
  """Writes `gains.md` and `examples_<arm>.png` (first seed of each arm)."""
  first = next(iter(configs.values()))
  paths = {"gains": os.path.join(workdir, "gains.md")}
  with open(paths["gains"], "w", encoding="utf-8") as f:
    f.write(gains_table(runs, tuple(first.eval.fewshot.shots)))
  for arm, by_seed in runs.items():
    if not by_seed:
      continue
    seed = min(by_seed)
    config = config_lib.apply_overrides(configs[arm], {"seed": seed})
    derived = fewshot_seg.fold_config(config)
    setup, state = supervised.restore(
        derived, os.path.join(by_seed[seed].workdir, "train"))
    data = fewshot.eval_split(setup)
    feats = fewshot.features(setup, state, data["image"])
    cfg = config_lib.apply_overrides(derived, {
        "eval.fewshot.episodes": EXAMPLES,
        "eval.fewshot.chunk": EXAMPLES}).eval.fewshot
    _, examples = fewshot.evaluate_episodes(feats, data["label"], cfg, seed)
    path = os.path.join(workdir, f"examples_{arm}.png")
    Image.fromarray(episode_grid(data["image"], data["label"],
                                 examples)).save(path)
    paths[f"examples_{arm}"] = path
  return paths

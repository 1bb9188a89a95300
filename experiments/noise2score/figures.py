"""Example images: the study's artifacts hook (`study.artifacts`).

For the first seed of every arm, restores the trained denoiser and writes
one PNG of 6 held-out patches: rows clean, noisy, denoised (and, for
Noise2Score, the blind estimate) into `<study>/<arm>/examples.png`.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from algos.denoising import evaluate

_COUNT = 6


def _png(rows: list[np.ndarray], path: str) -> str:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  grid = np.concatenate([np.concatenate(list(r[..., 0]), axis=1)
                         for r in rows], axis=0)
  pixels = (np.clip(grid, 0.0, 1.0) * 255).round().astype(np.uint8)
  big = Image.fromarray(pixels).resize(
      (pixels.shape[1] * 3, pixels.shape[0] * 3), Image.NEAREST)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  big.save(path)
  return path


def artifacts(configs: dict[str, Any], workdir: str,
              runs: dict[str, dict[int, Any]]) -> dict[str, str]:
  """`{"<arm>/examples": path}` of the written PNGs."""
  from common.study import engine  # pylint: disable=g-import-not-at-top
  paths = {}
  for arm, seed, cfg, s, state in engine.restore_first_seeds(configs, runs):
    data = evaluate.held_out(s, state)
    # Every other patch: photographs and digits alternate in the batch.
    pick = np.linspace(0, len(data["clean"]) - 1, _COUNT).astype(int)
    rows = [data["clean"][pick], data["noisy"][pick], data["denoised"][pick]]
    if cfg.method.name == "noise2score":
      estimate, _ = evaluate.blind_search(
          s, state, data["noisy"][pick], cfg.denoising.blind_points)
      rows.append(estimate)
    paths[f"{arm}/examples"] = _png(
        rows, os.path.join(workdir, arm.replace(", ", "_").replace(" ", "_")
                           .replace("=", ""), "examples.png"))
  return paths

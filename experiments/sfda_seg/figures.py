"""Example predictions of the sfda_seg study (`config.study.artifacts`).

For the study's first seed: one target-test volume (8 slices) as rows of
image, ground truth, the source model (no adaptation) and every arm's
adapted model, written to `<study>/predictions.png` (4 classes in fixed
colours: background black, organs red, green, blue).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from PIL import Image

from common import config as config_lib
from common.eval import evaluators
from common.protocols import finetune
from common.protocols import supervised

COLOURS = np.array([[0, 0, 0], [230, 60, 60], [60, 200, 60], [70, 110, 240],
                    [220, 220, 60]], np.uint8)
SLICES = 8
SCALE = 4


def _predict(config, workdir: str, images: np.ndarray) -> np.ndarray:
  setup, state = supervised.restore(config, workdir)
  out = evaluators.predict(setup, state, {"image": images}, ("logits",))
  return out["logits"].argmax(-1)


def artifacts(configs: dict[str, Any], workdir: str,
              runs: dict[str, dict[int, Any]]) -> dict[str, str]:
  """Writes the prediction grid; returns `{"predictions": path}`."""
  first = next(iter(configs))
  seed = min(runs[first])
  cfg = configs[first]
  from common.data import sources  # pylint: disable=g-import-not-at-top
  split = sources.open_split(cfg.data.name, cfg.data.eval_split,
                             cfg.data.data_dir or None)
  volume = split.get(np.arange(SLICES))
  images, labels = volume["image"], volume["label"]
  rows = [images, COLOURS[labels]]
  names = ["image", "ground truth"]
  seeded = _with_seed(cfg, seed)
  pre_dir = finetune.pretrain_dir(seeded, runs[first][seed].workdir)
  rows.append(COLOURS[_predict(finetune.pretrain_config(seeded), pre_dir,
                               images)])
  names.append("no adaptation")
  for arm, c in configs.items():
    rows.append(COLOURS[_predict(_with_seed(c, seed), os.path.join(
        runs[arm][seed].workdir, "finetune"), images)])
    names.append(arm)
  grid = np.concatenate([np.concatenate(list(r), axis=1) for r in rows], 0)
  grid = np.repeat(np.repeat(grid, SCALE, 0), SCALE, 1)
  path = os.path.join(workdir, "predictions.png")
  Image.fromarray(grid).save(path)
  with open(os.path.join(workdir, "predictions.txt"), "w") as f:
    f.write("rows, top to bottom: " + ", ".join(names) + "\n")
  return {"predictions": path}


def _with_seed(config, seed: int):
  return config_lib.apply_overrides(config, {"seed": seed})

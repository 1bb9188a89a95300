"""The study's artifacts hook (`study.artifacts`): each arm's first seed's
reconstruction grids, copied to `<study>/<arm>_<dist>.png`."""

from __future__ import annotations

import os
import shutil
from typing import Any


def artifacts(configs: dict[str, Any], workdir: str,
              runs: dict[str, dict[int, Any]]) -> dict[str, str]:
  """`{"<arm>/<dist>": path}` of the copied PNGs."""
  del configs
  paths = {}
  for arm, by_seed in runs.items():
    run = by_seed[min(by_seed)]
    for dist in ("in", "ood"):
      source = os.path.join(run.workdir, f"reconstructions_{dist}.png")
      if os.path.exists(source):
        target = os.path.join(workdir, f"{arm.replace(' ', '_')}_{dist}.png")
        shutil.copyfile(source, target)
        paths[f"{arm}/{dist}"] = target
  return paths

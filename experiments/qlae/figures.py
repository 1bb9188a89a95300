"""QLAE's figures: the study's artifacts hook (`study.artifacts`).

For the first seed of every arm, restores the trained autoencoder from its
checkpoint and draws the NMI heat-map (sources x latents) and the latent
traversals (`common.eval.disentanglement.write_figures`) into
`<study>/<arm>/figures/`.
"""

from __future__ import annotations

import os
from typing import Any

from common.eval import disentanglement
from common.study import engine


def artifacts(configs: dict[str, Any], workdir: str,
              runs: dict[str, dict[int, Any]]) -> dict[str, str]:
  """`{"<arm>/nmi": path, "<arm>/traversals": path}` of the written PNGs."""
  paths = {}
  for arm, seed, _, s, state in engine.restore_first_seeds(configs, runs):
    written = disentanglement.write_figures(
        s, state, os.path.join(workdir, arm, "figures"),
        title=f"{arm} (seed {seed})")
    paths.update({f"{arm}/{k}": v for k, v in written.items()})
  return paths

"""rethinking_wisdom's study hook: the three probes' tables (`probes.md`)."""

from __future__ import annotations

import os
from typing import Any, Mapping

import numpy as np

from algos.analysis import rethinking_wisdom as rw
from common.models import layers_lm
from common.models import transformer as transformer_lib
from common.study import artifacts
from experiments.rethinking_wisdom import config as cfg_lib


def params_of(d_model: int) -> int:
  return transformer_lib.num_params(layers_lm.config_from_kwargs(
      "tiny", vocab_size=259, num_layers=2, d_model=d_model, num_heads=4,
      num_kv_heads=4, d_ff=3 * d_model, max_len=cfg_lib.SEQ))


def probes_markdown(finals) -> str:
  p1 = rw.regularisation_benefit(finals, {
      "multi-epoch (4,096 unique tokens x 32)": ("p1/multi/wd0",
                                                 "p1/multi/wd08"),
      "one pass (131,072 unique tokens)": ("p1/onepass/wd0",
                                           "p1/onepass/wd08")})
  parts = ["**p1: weight decay 0.8 benefit, loss(wd 0) - loss(wd 0.8), d32**",
           rw.benefit_markdown(p1, "regime")]
  parts += ["**p2: equal tokens, one pass, d32**",
            rw.loss_by_arm_markdown(finals, ["p3/d32/b8", "p3/d32/b64"]),
            rw.benefit_markdown({"loss(b64) - loss(b8, lr 6e-3)":
                                 rw.paired_difference(finals, "p3/d32/b64",
                                                      "p3/d32/b8")},
                                "difference")]
  sizes = {s: params_of(d) for s, d in cfg_lib.SIZES.items()}
  try:
    cross = rw.crossover_table(finals, sizes, {
        "b8": "p3/{size}/b8", "b64": "p3/{size}/b64"})
  except ValueError as e:     # too few seeds or sizes ran
    cross = None
    parts.append(f"p3: no fit ({e})")
  if cross is not None:
    winner = "b8" if cross["small_winner"] == 1 else "b64"
    parts += ["**p3: crossover of b8 and b64 over model size (one pass)**",
              rw.loss_by_arm_markdown(finals, [f"p3/{s}/{r}" for s in sizes
                                               for r in cfg_lib.RECIPES]),
              f"Parameters: {sizes}. Fitted asymptotes E: b8 "
              f"{cross['e_b8']:.3f}, b64 {cross['e_b64']:.3f}. Ahead at the "
              f"smallest size: {winner}. Crossover inside the measured range "
              f"at N = {cross['crossover']:.3g} (95% CI [{cross['lo']:.3g}, "
              f"{cross['hi']:.3g}]); a crossover in {100 * cross['p_cross']:.0f}%"
              f" of the bootstrap resamples."]
  return "\n\n".join(parts) + "\n"


def crossover_figure(finals, path: str) -> str:
  """Probe 3's held-out loss against parameters, one line per recipe
  (mean +- sample std over seeds), log x: where the lines cross is the
  crossover the probe tests."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(5.2, 3.6))
  for recipe in cfg_lib.RECIPES:
    xs, means, stds = [], [], []
    for size, d in cfg_lib.SIZES.items():
      vals = [r["loss"] for r in finals.get(f"p3/{size}/{recipe}",
                                            {}).values()]
      if vals:
        xs.append(params_of(d))
        means.append(np.mean(vals))
        stds.append(np.std(vals, ddof=1) if len(vals) > 1 else 0.0)
    ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=recipe)
  ax.set_xscale("log")
  ax.set_xlabel("parameters")
  ax.set_ylabel("held-out loss (nats/token)")
  ax.set_title("probe 3: two recipes over model size")
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path


def probes_artifact(configs: Mapping[str, Any], workdir: str,
                    runs: Mapping[str, Mapping[int, Any]]) -> dict[str, str]:
  del configs
  finals = artifacts.final_metrics(runs)
  text = probes_markdown(finals)
  return {"probes": artifacts.write_markdown(workdir, "probes.md", text),
          "crossover": crossover_figure(
              finals, os.path.join(workdir, "crossover.png"))}

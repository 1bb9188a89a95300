"""The QLAE study: train each arm with the shared loop, then disentanglement.

`config.runner = "experiments.qlae.runner"`. Training is `common.loop.train`
(the one train step, checkpoints, logging, resumption); its final evaluation
is the disentanglement evaluator `common.disentanglement` (via
`config.evaluator`). Afterwards the first seed of every arm is restored from
its checkpoint to draw the NMI heat-map and latent traversals. Writes
`results.md`, `results.json` and `<arm>/figures/{nmi,traversals}.png` under
the study folder.
"""

from __future__ import annotations

import math
import os
from typing import Sequence

import ml_collections as mlc
import numpy as np

from common import checkpoint as checkpoint_lib
from common import config as config_lib
from common import disentanglement
from common import harness
from common import loop
from common import study

_LABELS = {"infom": "InfoM", "infoe": "InfoE", "infoc": "InfoC",
           "dci_d": "DCI-D", "dci_c": "DCI-C", "dci_i": "DCI-I",
           "mse": "MSE", "bce": "BCE"}


def validate(config: mlc.ConfigDict) -> None:
  config_lib.validate_training(config)
  if config.evaluator != "common.disentanglement":
    raise ValueError("the qlae runner reads disentanglement metrics: set "
                     "config.evaluator='common.disentanglement'")
  if config.model.name != "autoencoder":
    raise ValueError(f"config.model.name={config.model.name!r}; the qlae "
                     "study trains 'autoencoder' models")


def _figures(config: mlc.ConfigDict, workdir: str, outdir: str,
             title: str) -> dict[str, str]:
  """Writes the figures of the run in `workdir` to `outdir`: from its final
  evaluation if it just ran, else restored from its checkpoint."""
  last = disentanglement.last_evaluation(config)
  if last is not None:
    s, state, result = last
    return disentanglement.write_figures(s, state, outdir, title=title,
                                         result=result)
  s = harness.setup(config)
  ckpt = checkpoint_lib.Checkpointer(workdir, config.train.keep_checkpoints)
  try:
    state = ckpt.restore_latest(s.abstract_state)
  finally:
    ckpt.close()
  if state is None:
    raise checkpoint_lib.CheckpointError(f"no checkpoint in {workdir}")
  return disentanglement.write_figures(s, state, outdir, title=title)


def run_study(config: mlc.ConfigDict, workdir: str, seeds: Sequence[int],
              arms: Sequence[str] = (), command: str = "",
              show_progress: bool = True) -> study.StudyResult:
  """Every (arm, seed), the table and the figures; see the module doc."""
  validate(config)
  arm_overrides = study.study_arms(config, arms)
  metrics = list(config.study.metrics)
  summary, per_run, figures, seconds = {}, {}, {}, {}
  total, i = len(arm_overrides) * len(seeds), 0
  for arm, overrides in arm_overrides.items():
    finals, per_run[arm], seconds[arm] = [], {}, []
    for seed in seeds:
      i += 1
      cfg = config_lib.apply_overrides(config, overrides + [f"seed={seed}"])
      run_dir = os.path.join(workdir, arm.replace(" ", "_"), f"seed_{seed}")
      result = loop.train(cfg, run_dir, show_progress=show_progress,
                          desc=f"[{i}/{total}] {arm} seed {seed}")
      if result.status != "finished":
        raise SystemExit(f"run {arm} seed {seed} was preempted; rerun the "
                         "same command to resume it")
      finals.append(result.final_eval)
      per_run[arm][str(seed)] = result.final_eval
      seconds[arm].append(result.seconds)
      if seed == seeds[0]:
        figures[arm] = _figures(
            cfg, run_dir, os.path.join(workdir, arm.replace(" ", "_"),
                                       "figures"), f"{arm} (seed {seed})")
    summary[arm] = {
        m: dict(zip(("mean", "std"),
                    study._mean_std([f[m] for f in finals])))  # pylint: disable=protected-access
        for m in metrics}
  table = _table(summary, metrics, config, len(seeds))
  return study.write_results(workdir, table, seeds, summary, config,
                             command, dataset=config.data.name,
                             runs=per_run, run_seconds=seconds,
                             figures=figures)


def _table(summary, metrics, config, n_seeds: int) -> str:
  lines = [f"Ours: {config.data.name}, mean +- std over {n_seeds} seed(s); "
           f"{config.train.steps} steps. No paper numbers (see README).", "",
           "| arm | " + " | ".join(_LABELS.get(m, m) for m in metrics) + " |",
           "|---|" + "---|" * len(metrics)]
  for arm, agg in summary.items():
    cells = []
    for m in metrics:
      mean, std = agg[m]["mean"], agg[m]["std"]
      digits = 4 if m in ("mse", "bce") else 3
      cells.append(f"{mean:.{digits}f}" + (
          f" +- {std:.{digits}f}" if std is not None and not math.isnan(std)
          else ""))
    lines.append(f"| {arm} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def smoke(config: mlc.ConfigDict, workdir: str) -> None:
  """A few steps of QLAE, its disentanglement evaluation and figures."""
  validate(config)
  cfg = config_lib.apply_overrides(config, {
      "train.steps": config.smoke.steps, "train.tensorboard": False,
      "train.eval_every_epochs": 0,
      "train.checkpoint_every_steps": config.smoke.steps})
  result = loop.train(cfg, workdir, show_progress=False)
  if result.status != "finished" or result.steps != config.smoke.steps:
    raise AssertionError(f"smoke run ended {result.status} after "
                         f"{result.steps} steps")
  bad = {k: v for k, v in result.final_eval.items() if not np.isfinite(v)}
  if bad or "infom" not in result.final_eval:
    raise AssertionError(f"bad smoke evaluation: {result.final_eval}")
  paths = _figures(cfg, workdir, os.path.join(workdir, "figures"), "smoke")
  missing = [p for p in paths.values() if not os.path.exists(p)]
  if missing:
    raise AssertionError(f"figures not written: {missing}")

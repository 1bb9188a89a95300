"""The study engine: every arm of an experiment over seeds, one set of tables.

An experiment config names its arms (`config.study.arms`: label ->
comma-separated overrides such as `"method.name=cross_entropy"`), the
metrics of its table, the paper's numbers and extra tables / plots (see
`common.study.tables`). `run_study` runs each (arm, seed) through the
config's protocol in `<workdir>/<arm>/seed_<k>/`. Each run resumes from its
own checkpoints, and a finished one is read back from its `summary.json`
only when that summary carries the fingerprint of the same config (a
changed config is refused, never reported). Then it writes

* `results.md`: the command, then the tables (mean +- std over seeds,
  sample std, ddof 1), the paper's numbers in their own labelled columns;
* `results.json`: the same numbers, every run's final metrics, its eval
  curve and its config fingerprint;
* `curves.png` when `study.plots` names eval metrics (against epoch);
* whatever the artifacts hook (`study.artifacts`, "module:function") adds,
  e.g. paper-specific figures.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import shlex
import sys
from typing import Any, Sequence

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import ml_collections as mlc
import numpy as np

from common import config as config_lib
from common import protocols
from common.protocols import runs as runs_lib
from common.study import tables as tables_lib


@dataclasses.dataclass
class StudyResult:
  table_markdown: str
  summary: dict[str, Any]
  paths: dict[str, str]
  runs: dict[str, dict[int, protocols.RunResult]] = dataclasses.field(
      default_factory=dict)


class PreemptedError(RuntimeError):
  """A run of the study was preempted; rerunning the command resumes it."""


def study_arms(config: mlc.ConfigDict,
               only: Sequence[str] = ()) -> dict[str, list[str]]:
  """Arm label -> override list; the config itself if it declares none."""
  arms = {k: [o for o in v.split(",") if o.strip()] if v else []
          for k, v in config.study.arms.items()}
  if not arms:
    arms = {config.method.name if "method" in config else "default": []}
  if only:
    unknown = [a for a in only if a not in arms]
    if unknown:
      raise config_lib.ConfigError(
          f"unknown arm(s) {unknown}; this experiment's arms: {list(arms)}")
    arms = {a: arms[a] for a in only}
  return arms


def check_seeds(seeds: Sequence[int]) -> list[int]:
  seeds = list(seeds)
  if not seeds:
    raise config_lib.ConfigError("no seeds given; pass e.g. --seeds=0,1,2")
  dup = sorted({s for s in seeds if seeds.count(s) > 1})
  if dup:
    raise config_lib.ConfigError(f"seeds {dup} given more than once in "
                                 f"{seeds}; each seed is one run")
  return seeds


def arm_configs(config: mlc.ConfigDict, arms: Sequence[str] = ()
                ) -> dict[str, mlc.ConfigDict]:
  """Each arm's config, validated by its protocol before anything runs."""
  out = {}
  for arm, overrides in study_arms(config, arms).items():
    try:
      cfg = config_lib.apply_overrides(config, overrides)
      protocols.validate(cfg)
    except ValueError as e:
      raise config_lib.ConfigError(f"arm {arm!r} ({overrides}): {e}") from e
    out[arm] = cfg
  return out


def restore_first_seeds(configs: dict[str, mlc.ConfigDict],
                        runs: dict[str, dict[int, Any]]):
  """Yields `(arm, seed, config, setup, state)` of each arm's lowest seed.

  For `study.artifacts` hooks that draw figures from one trained run per
  arm: the run is restored from its workdir (supervised-protocol layout).
  """
  from common.protocols import supervised  # pylint: disable=g-import-not-at-top
  for arm, by_seed in runs.items():
    if not by_seed:
      continue
    seed = min(by_seed)
    cfg = config_lib.apply_overrides(configs[arm], {"seed": seed})
    setup, state = supervised.restore(cfg, by_seed[seed].workdir)
    yield arm, seed, cfg, setup, state


def run_one(config: mlc.ConfigDict, workdir: str, show_progress: bool = True,
            desc: str = "") -> protocols.RunResult:
  """One run through its protocol, or its finished result from the
  workdir when the fingerprints match."""
  cached = runs_lib.cached_result(workdir, config)
  if cached is not None:
    return cached
  result = protocols.get_protocol(config).run(
      config, workdir, show_progress=show_progress, desc=desc)
  if result.status == "finished":
    runs_lib.write_summary(workdir, config, result)
  return result


def _run_arm(protocol, cfg, workdir, arm, seeds, show_progress, counter):
  """`{seed: RunResult}` of one arm (seeds together if the protocol can)."""
  configs = {s: config_lib.apply_overrides(cfg, {"seed": s}) for s in seeds}
  dirs = {s: os.path.join(workdir, arm, f"seed_{s}") for s in seeds}
  results = {}
  todo = []
  for s in seeds:
    cached = runs_lib.cached_result(dirs[s], configs[s])
    if cached is not None:
      results[s] = cached
    else:
      todo.append(s)
  if todo and protocol.run_seeds is not None:
    done = protocol.run_seeds(cfg, {s: dirs[s] for s in todo},
                              show_progress=show_progress)
    for s, r in done.items():
      if r.status == "finished":
        runs_lib.write_summary(dirs[s], configs[s], r)
      results[s] = r
  else:
    for s in todo:
      counter[0] += 1
      results[s] = run_one(configs[s], dirs[s], show_progress,
                           desc=f"[{counter[0]}/{counter[1]}] {arm} seed {s}")
      if results[s].status != "finished":
        break   # SIGTERM: stop now, not after the arm's other seeds
  for s in seeds:
    if s not in results or results[s].status != "finished":
      raise PreemptedError(f"run {arm} seed {s} was preempted; rerun the "
                           "same command to resume it")
  return {s: results[s] for s in seeds}


def run_study(config: mlc.ConfigDict, workdir: str, seeds: Sequence[int],
              arms: Sequence[str] = (), show_progress: bool = True,
              command: str | None = None) -> StudyResult:
  """Runs every (arm, seed) and writes the tables, plots and artifacts.

  Args:
    config: locked experiment config (CLI overrides already applied).
    workdir: study folder.
    seeds: the seeds; each run sets `config.seed`.
    arms: a subset of the config's arm labels (default all).
    show_progress: per-run progress bars.
    command: the command line to record next to the results.

  Returns:
    The markdown tables, the aggregated numbers and the written paths.
  """
  seeds = check_seeds(seeds)
  configs = arm_configs(config, arms)
  protocol = protocols.get_protocol(config)
  counter = [0, len(configs) * len(seeds)]
  all_runs = {arm: _run_arm(protocol, cfg, workdir, arm, seeds, show_progress,
                            counter) for arm, cfg in configs.items()}
  finals = {arm: {s: r.final for s, r in by_seed.items()}
            for arm, by_seed in all_runs.items()}
  s = config.study
  metrics = list(s.metrics)
  labels = s.metric_labels.to_dict()
  paper = {k: v.to_dict() for k, v in s.paper.items()}
  parts = [tables_lib.default_table(finals, metrics, labels, paper,
                                    s.formats.to_dict())] if metrics else []
  parts += [tables_lib.spec_table(finals, spec) for spec in s.tables]
  caption = (f"Ours: {_dataset(config)}, mean +- std over {len(seeds)} "
             f"seed(s). " + (f"Paper: {s.paper_source}." if paper else
                             "No paper numbers in this table."))
  table = caption + "\n\n" + "\n\n".join(parts)
  summary = tables_lib.aggregate(finals, sorted(
      {m for by_seed in finals.values() for r in by_seed.values()
       for m in r}))
  record = {
      "runs": {arm: {str(sd): {"final": r.final,
                               "fingerprint": config_lib.fingerprint(
                                   config_lib.apply_overrides(
                                       configs[arm], {"seed": sd}))}
                     for sd, r in by_seed.items()}
               for arm, by_seed in all_runs.items()},
      "curves": {arm: {str(sd): r.history for sd, r in by_seed.items()}
                 for arm, by_seed in all_runs.items()},
      "paper": paper, "paper_source": s.paper_source}
  extra = {}
  if s.plots:
    extra["plot"] = os.path.join(workdir, "curves.png")
  result = write_results(workdir, table, seeds, summary, config, command,
                         extra_paths=extra, **record)
  if s.plots:
    plot_curves({a: [r.history for r in by_seed.values()]
                 for a, by_seed in all_runs.items()}, list(s.plots), labels,
                extra["plot"])
  if s.artifacts:
    result.paths.update(_artifacts(s.artifacts)(configs, workdir, all_runs)
                        or {})
  result.runs = all_runs
  return result


def _dataset(config: mlc.ConfigDict) -> str:
  if "data" not in config:
    return config.env.name if "env" in config else config.experiment
  name = config.data.name
  if config.data.get("train_split", "train") != "train":
    name += f" (trained on {config.data.train_split!r})"
  return name


def _artifacts(spec: str):
  module, _, name = spec.partition(":")
  try:
    fn = getattr(importlib.import_module(module), name or "artifacts")
  except (ImportError, AttributeError) as e:
    raise config_lib.ConfigError(
        f"study.artifacts={spec!r} is not an importable 'module:function' "
        f"({e})") from e
  return fn


def plot_curves(histories: dict[str, list[list[dict[str, Any]]]],
                keys: Sequence[str], labels: dict[str, str],
                path: str) -> None:
  """Eval metrics against epoch: mean and +-1 std band over seeds."""
  fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.4),
                           squeeze=False)
  axes = axes[0]
  for arm, runs in histories.items():
    runs = [[r for r in h if "epoch" in r] for h in runs]
    epochs = sorted(set.intersection(*[{r["epoch"] for r in h}
                                       for h in runs])) if runs else []
    if not epochs:
      continue
    for ax, key in zip(axes, keys):
      table = np.asarray([[next(r.get(key, np.nan) for r in h
                                if r["epoch"] == e) for e in epochs]
                          for h in runs], np.float64)
      mean = table.mean(0)
      std = table.std(0, ddof=1) if len(table) > 1 else np.zeros_like(mean)
      ax.plot(epochs, mean, label=arm)
      ax.fill_between(epochs, mean - std, mean + std, alpha=0.2)
      ax.set_xlabel("epoch")
      ax.set_ylabel(f"eval {tables_lib.label_of(key, labels)}")
  axes[0].legend()
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def write_results(workdir: str, table: str, seeds: Sequence[int],
                  summary: dict[str, Any], config: mlc.ConfigDict,
                  command: str | None = None, preamble: str = "",
                  extra_paths: dict[str, str] | None = None,
                  **record: Any) -> StudyResult:
  """Writes a study's `results.md` and `results.json` under `workdir`.

  Args:
    workdir: study folder (created if missing).
    table: the markdown table(s).
    seeds: the seeds of the study.
    summary: the aggregated numbers (also returned).
    config: the study config, saved in the JSON with its fingerprint.
    command: the command line to record (default: this process's argv).
    preamble: a paragraph printed between the command and the table.
    extra_paths: other files of the study (plots), for the returned paths.
    **record: more JSON entries (per-run numbers, curves...).

  Returns:
    The table, the summary and the paths (`markdown`, `json`, extras).
  """
  os.makedirs(workdir, exist_ok=True)
  command = command or " ".join(shlex.quote(a) for a in sys.argv)
  paths = {"markdown": os.path.join(workdir, "results.md"),
           "json": os.path.join(workdir, "results.json"),
           **(extra_paths or {})}
  runs_lib.atomic_write(paths["markdown"], f"Command: `{command}`\n\n" + (
      f"{preamble}\n\n" if preamble else "") + f"{table}\n")
  runs_lib.atomic_write(paths["json"], json.dumps({
      "command": command, "seeds": list(seeds), "summary": summary,
      **record, "fingerprint": config_lib.fingerprint(config),
      "config": json.loads(config.to_json())}, indent=2))
  return StudyResult(table_markdown=table, summary=summary, paths=paths)

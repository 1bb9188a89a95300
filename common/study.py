"""Studies: every arm of an experiment over several seeds, one table.

An experiment config names its arms (`config.study.arms`: label -> overrides
such as `"method.name=cross_entropy"`) and the paper's own numbers
(`config.study.paper`). `run_study` trains each arm for each seed in
`<workdir>/<arm>/seed_<k>/` (each run resumes from its own checkpoints, so an
interrupted study picks up where it stopped), then writes

* `results.md`: mean +- std (sample std, ddof=1) over seeds of each metric,
  beside the paper's numbers in their own, labelled columns;
* `results.json`: the same, plus every run's final metrics and eval curve;
* `curves.png`: eval error / NLL / ECE against epoch, mean and +-1 std band.
"""

from __future__ import annotations

import dataclasses
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
from common import loop

METRIC_LABELS = {
    "error": "error (%)", "top5_error": "top-5 error (%)", "nll": "NLL",
    "ece": "ECE-15 (%)", "ece_10": "ECE-10 (%)", "aurc": "AURC (x1e3)",
    "eaurc": "E-AURC (x1e3)",
}


@dataclasses.dataclass
class StudyResult:
  table_markdown: str
  summary: dict[str, Any]
  paths: dict[str, str]


def study_arms(config: mlc.ConfigDict,
               only: Sequence[str] = ()) -> dict[str, list[str]]:
  """Arm label -> override list; the config itself if it declares none."""
  arms = {k: [o for o in v.split(",") if o.strip()] if v else []
          for k, v in config.study.arms.items()}
  if not arms:
    arms = {config.method.name: []}
  if only:
    unknown = [a for a in only if a not in arms]
    if unknown:
      raise ValueError(f"unknown arm(s) {unknown}; this experiment's arms: "
                       f"{list(arms)}")
    arms = {a: arms[a] for a in only}
  return arms


def _mean_std(values: list[float]) -> tuple[float, float | None]:
  arr = np.asarray(values, np.float64)
  std = float(arr.std(ddof=1)) if len(arr) > 1 else None  # JSON null
  return float(arr.mean()), std


def _format_table(summary: dict[str, Any], metrics: Sequence[str],
                  paper: dict[str, dict[str, float]], paper_source: str,
                  dataset: str, n_seeds: int) -> str:
  ours = [f"ours: {METRIC_LABELS.get(m, m)}" for m in metrics]
  paper_metrics = [m for m in metrics if any(m in p for p in paper.values())]
  theirs = [f"paper: {METRIC_LABELS.get(m, m)}" for m in paper_metrics]
  lines = [
      f"Ours: {dataset}, mean +- std over {n_seeds} seed(s). "
      + (f"Paper: {paper_source}." if paper else "No paper numbers given."),
      "",
      "| arm | " + " | ".join(ours + theirs) + " |",
      "|---|" + "---|" * (len(ours) + len(theirs)),
  ]
  for arm, agg in summary.items():
    # One seed has no spread: print the value alone, not a fake "+- 0".
    cells = [f"{agg[m]['mean']:.3f}" + (f" +- {agg[m]['std']:.3f}"
                                         if n_seeds > 1 else "")
             for m in metrics]
    arm_paper = paper.get(arm, {})
    cells += [f"{arm_paper[m]:g}" if m in arm_paper else "-"
              for m in paper_metrics]
    lines.append(f"| {arm} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def _plot_curves(runs: dict[str, list[dict[str, Any]]], path: str) -> None:
  keys = [("error", "eval error (%)"), ("nll", "eval NLL"),
          ("ece", "eval ECE-15 (%)")]
  fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.4))
  for arm, histories in runs.items():
    steps = sorted(set.intersection(
        *[{r["epoch"] for r in h} for h in histories])) if histories else []
    if not steps:
      continue
    for ax, (key, label) in zip(axes, keys):
      table = np.asarray([[next(r[key] for r in h if r["epoch"] == e)
                           for e in steps] for h in histories])
      # Same spread as the table: sample std over seeds.
      mean = table.mean(0)
      std = table.std(0, ddof=1) if len(table) > 1 else np.zeros_like(mean)
      ax.plot(steps, mean, label=arm)
      ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
      ax.set_xlabel("epoch")
      ax.set_ylabel(label)
  axes[0].legend()
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def run_study(config: mlc.ConfigDict, workdir: str, seeds: Sequence[int],
              arms: Sequence[str] = (), show_progress: bool = True,
              command: str | None = None) -> StudyResult:
  """Trains every (arm, seed) and writes the tables and the plot.

  Args:
    config: locked experiment config (CLI overrides already applied).
    workdir: study folder.
    seeds: the seeds; each run sets `config.seed`.
    arms: a subset of the config's arm labels (default all).
    show_progress: per-run progress bars.
    command: the command line to record next to the results.

  Returns:
    The markdown table, the aggregated numbers and the written paths.
  """
  arm_overrides = study_arms(config, arms)
  metrics = list(config.study.metrics)
  summary, per_run, curves = {}, {}, {}
  total = len(arm_overrides) * len(seeds)
  i = 0
  for arm, overrides in arm_overrides.items():
    finals, curves[arm], per_run[arm] = [], [], {}
    for seed in seeds:
      i += 1
      cfg = config_lib.apply_overrides(config, overrides + [f"seed={seed}"])
      result = loop.train(
          cfg, os.path.join(workdir, arm, f"seed_{seed}"),
          show_progress=show_progress, desc=f"[{i}/{total}] {arm} seed {seed}")
      if result.status != "finished":
        raise SystemExit(f"run {arm} seed {seed} was preempted; rerun the "
                         f"same command to resume it")
      finals.append(result.final_eval)
      curves[arm].append(result.eval_history)
      per_run[arm][str(seed)] = result.final_eval
    summary[arm] = {
        m: dict(zip(("mean", "std"), _mean_std([f[m] for f in finals])))
        for m in metrics}
  paper = {k: v.to_dict() for k, v in config.study.paper.items()}
  dataset = config.data.name
  if config.data.train_split != "train":
    dataset += f" (trained on {config.data.train_split!r})"
  table = _format_table(summary, metrics, paper, config.study.paper_source,
                        dataset, len(seeds))
  result = write_results(
      workdir, table, seeds, summary, config, command,
      extra_paths={"plot": os.path.join(workdir, "curves.png")},
      dataset=config.data.name, paper=paper,
      paper_source=config.study.paper_source, runs=per_run, curves=curves)
  _plot_curves(curves, result.paths["plot"])
  return result


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
    config: the study config, saved in the JSON.
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
  with open(paths["markdown"], "w") as f:
    f.write(f"Command: `{command}`\n\n" +
            (f"{preamble}\n\n" if preamble else "") + f"{table}\n")
  with open(paths["json"], "w") as f:
    json.dump({"command": command, "seeds": list(seeds), "summary": summary,
               **record, "config": json.loads(config.to_json())}, f,
              indent=2)
  return StudyResult(table_markdown=table, summary=summary, paths=paths)

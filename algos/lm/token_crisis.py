"""Token crisis: equal token budgets of unique vs repeated pre-training data.

To Repeat or Not To Repeat: Insights from Scaling LLM under Token-Crisis.
Xue, Fu, Zhou, Zheng, You. NeurIPS 2023. arXiv:2305.13230. No official code
was released (the experiments ran on T5 / UL2 in the authors' TPU setup).

The paper is an empirical study; its one "method" is a data option: train
for a fixed token budget on `unique_tokens` distinct tokens, repeated for
as many epochs as the budget needs, against the same budget of fresh
tokens, and measure the held-out loss ("multi-epoch degradation"), across
model sizes and with dropout. Here:

* `rows_for_unique_tokens(unique_tokens, seq_len)`: the text source's
  `data.kwargs.max_train_rows` that keeps exactly `unique_tokens` training
  tokens (the stream-packed in-repo corpora pack without padding, so rows
  x seq_len targets; a count that is not a multiple of `seq_len` is an
  error, not a silent rounding);
* `repetition_overrides(...)`: the config overrides of one arm (unique
  tokens, steps of the equal budget);
* `degradation(...)`: per (size, dropout), the held-out loss of the
  repeated arm minus the unique arm, paired by seed, mean +- std and the
  bootstrap 95% interval of the mean (`algos/analysis/scaling_laws.py`,
  the repo's shared scaling tools): the paper's multi-epoch degradation;
  `degradation_artifact` writes it (mean +- std) as a table next to the
  study's results (`study.artifacts`).
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np

from algos.analysis import scaling_laws
from common import config as config_lib


def rows_for_unique_tokens(unique_tokens: int, seq_len: int) -> int:
  """Training rows holding exactly `unique_tokens` next-token targets."""
  if unique_tokens <= 0 or unique_tokens % seq_len:
    raise config_lib.ConfigError(
        f"unique_tokens={unique_tokens} must be a positive multiple of "
        f"data.kwargs.seq_len={seq_len} (whole packed rows)")
  return unique_tokens // seq_len


def budget_steps(total_tokens: int, batch_size: int, seq_len: int) -> int:
  """Optimizer steps that consume `total_tokens` at `batch_size` rows."""
  per_step = batch_size * seq_len
  if total_tokens <= 0 or total_tokens % per_step:
    raise config_lib.ConfigError(
        f"token budget {total_tokens} must be a positive multiple of "
        f"batch_size x seq_len = {per_step}")
  return total_tokens // per_step


def repetition_overrides(unique_tokens: int, total_tokens: int,
                         batch_size: int, seq_len: int) -> list[str]:
  """The overrides of an arm that sees `total_tokens` drawn from the first
  `unique_tokens` tokens of the training split (epochs = total/unique)."""
  rows = rows_for_unique_tokens(unique_tokens, seq_len)
  if total_tokens < unique_tokens:
    raise config_lib.ConfigError(
        f"unique_tokens={unique_tokens} exceeds the budget {total_tokens}")
  return [f"data.kwargs.max_train_rows={rows}",
          f"train.steps={budget_steps(total_tokens, batch_size, seq_len)}"]


def degradation(runs: Mapping[str, Mapping[int, Mapping[str, float]]],
                pairs: Mapping[str, tuple[str, str]],
                metric: str = "loss") -> dict[str, dict[str, float]]:
  """`{label: {"mean", "std", "n"}}` of `metric(repeated) - metric(unique)`
  over the seeds both arms of `pairs[label] = (repeated, unique)` ran."""
  out = {}
  for label, (rep, uni) in pairs.items():
    seeds = sorted(set(runs.get(rep, {})) & set(runs.get(uni, {})))
    diffs = np.asarray([runs[rep][s][metric] - runs[uni][s][metric]
                        for s in seeds if metric in runs[rep][s]
                        and metric in runs[uni][s]], np.float64)
    if len(diffs):
      lo, hi = (scaling_laws.bootstrap_mean_ci(diffs) if len(diffs) > 1
                else (float("nan"), float("nan")))
      out[label] = {"mean": float(diffs.mean()),
                    "std": float(diffs.std(ddof=1)) if len(diffs) > 1
                    else float("nan"), "n": float(len(diffs)),
                    "ci_lo": lo, "ci_hi": hi}
  return out


def degradation_markdown(table: Mapping[str, Mapping[str, float]],
                         metric: str = "loss") -> str:
  lines = [f"| model, dropout | degradation: {metric}(repeated) - "
           f"{metric}(unique) | seeds |", "|---|---|---|"]
  for label, d in table.items():
    std = "" if np.isnan(d["std"]) else f" +- {d['std']:.4f}"
    lines.append(f"| {label} | {d['mean']:+.4f}{std} | {int(d['n'])} |")
  return "\n".join(lines)


def degradation_artifact(configs: Mapping[str, Any], workdir: str,
                         runs: Mapping[str, Mapping[int, Any]],
                         pairs: Mapping[str, tuple[str, str]] | None = None
                         ) -> dict[str, str]:
  """The study hook: writes `<workdir>/degradation.md` from the arms named
  `<model>/<dropout>/repeated` and `<model>/<dropout>/unique`."""
  del configs
  finals = {arm: {s: r.final for s, r in by_seed.items()}
            for arm, by_seed in runs.items()}
  if pairs is None:
    pairs = {arm.rsplit("/", 1)[0].replace("/", ", "):
             (arm, arm.rsplit("/", 1)[0] + "/unique")
             for arm in finals if arm.endswith("/repeated")}
  text = degradation_markdown(degradation(finals, pairs))
  path = os.path.join(workdir, "degradation.md")
  with open(path, "w", encoding="utf-8") as f:
    f.write(text + "\n")
  return {"degradation": path}


def dropout_label(p: float) -> str:
  """`p<percent>`: 0.1 -> "p10" (arm labels cannot hold dots)."""
  return f"p{round(p * 100):d}"


def arm_grid(models: Mapping[str, Sequence[str]],
             dropouts: Sequence[float],
             data: Mapping[str, Sequence[str]]) -> dict[str, str]:
  """`study.arms` of the full grid: `<model>/p<dropout in %>/<data>` (arm
  labels cannot hold dots: dropout 0.1 is `p10`) -> the comma-joined
  overrides of the model, the dropout and the data arm."""
  arms = {}
  for m, m_over in models.items():
    for p in dropouts:
      for d, d_over in data.items():
        arms[f"{m}/{dropout_label(p)}/{d}"] = ",".join(
            [*m_over, f"model.kwargs.dropout={p}", *d_over])
  return arms

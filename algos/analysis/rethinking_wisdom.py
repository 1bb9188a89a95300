"""Probes of regularisation-era wisdom in the scaling era.

Rethinking Conventional Wisdom in Machine Learning: From Generalization to
Scaling. Lechao Xiao 2024, arXiv:2409.15156. A position paper; no official
code. Its three observations, turned into tools that read a study's final
held-out losses (pure numpy; the fits and bootstrap intervals are the
shared `algos/analysis/scaling_laws.py`):

1. explicit regularisation (weight decay) helps when the data are repeated
   for many epochs but not in one-pass training: `regularisation_benefit`
   = loss(unregularised) - loss(regularised), paired by seed, with a
   bootstrap interval, per regime;
2. small batches with large learning rates (implicit regularisation) are
   not better at an equal token budget in one pass: `equal_token_overrides`
   builds arms of one token budget at several batch sizes;
3. "scaling-law crossover": a recipe ahead at small scale falls behind at
   large scale: `crossover_table` fits `L(N) = A/N^alpha + E` to each
   recipe over model sizes and locates the crossing with a bootstrap CI
   (`scaling_laws.crossover_with_ci`).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from algos.analysis import scaling_laws as sl
from common import config as config_lib

Finals = Mapping[str, Mapping[int, Mapping[str, float]]]


def equal_token_overrides(total_tokens: int, batch_size: int, seq_len: int,
                          learning_rate: float | None = None) -> list[str]:
  """Overrides of an arm that spends `total_tokens` at `batch_size` rows of
  `seq_len` (steps = tokens / (batch x seq_len), exact)."""
  per_step = batch_size * seq_len
  if total_tokens <= 0 or total_tokens % per_step:
    raise config_lib.ConfigError(
        f"token budget {total_tokens} must be a positive multiple of "
        f"batch_size x seq_len = {per_step}")
  out = [f"train.batch_size={batch_size}",
         f"train.steps={total_tokens // per_step}"]
  if learning_rate is not None:
    out.append(f"schedule.learning_rate={learning_rate}")
  return out


def paired_difference(finals: Finals, arm_a: str, arm_b: str,
                      metric: str = "loss") -> dict[str, float]:
  """`metric(a) - metric(b)` over the seeds both arms ran: mean, the
  bootstrap 95% interval of the mean (NaN with one seed), seeds."""
  a, b = finals.get(arm_a, {}), finals.get(arm_b, {})
  seeds = sorted(set(a) & set(b))
  d = np.asarray([a[s][metric] - b[s][metric] for s in seeds], np.float64)
  if not len(d):
    return {"mean": float("nan"), "lo": float("nan"), "hi": float("nan"),
            "n": 0.0}
  lo, hi = (sl.bootstrap_mean_ci(d) if len(d) > 1
            else (float("nan"), float("nan")))
  return {"mean": float(d.mean()), "lo": lo, "hi": hi, "n": float(len(d))}


def regularisation_benefit(finals: Finals,
                           regimes: Mapping[str, tuple[str, str]],
                           metric: str = "loss") -> dict[str, dict]:
  """Per regime `{name: (unregularised arm, regularised arm)}`: the loss
  the regulariser removes (positive = it helps)."""
  return {name: paired_difference(finals, plain, reg, metric)
          for name, (plain, reg) in regimes.items()}


def crossover_table(finals: Finals, sizes: Mapping[str, float],
                    recipe_arms: Mapping[str, str], metric: str = "loss",
                    num_boot: int = 500) -> dict[str, float]:
  """Crossover of two recipes over model sizes.

  Args:
    finals: arm -> seed -> final metrics.
    sizes: size label -> parameter count (>= 3 sizes).
    recipe_arms: two recipes, name -> arm pattern with `{size}`.
    metric: the loss.
    num_boot: bootstrap resamples.

  Returns:
    `scaling_laws.crossover_with_ci`'s dict, plus each recipe's fitted
    asymptote `e_<name>`.
  """
  if len(recipe_arms) != 2:
    raise ValueError(f"need exactly two recipes; got {list(recipe_arms)}")
  n = [float(v) for v in sizes.values()]
  ys = []
  for pattern in recipe_arms.values():
    ys.append([[r[metric] for r in finals.get(pattern.format(size=s),
                                              {}).values()]
               for s in sizes])
  out = sl.crossover_with_ci(n, ys[0], ys[1], num_boot=num_boot)
  for name, y in zip(recipe_arms, ys):
    out[f"e_{name}"] = sl.fit_power_law(n, [np.mean(v) for v in y]).e
  return out


def benefit_markdown(rows: Mapping[str, Mapping[str, float]],
                     header: str) -> str:
  lines = [f"| {header} | mean [95% bootstrap CI] | seeds |", "|---|---|---|"]
  for name, d in rows.items():
    lines.append(f"| {name} | {d['mean']:+.4f} [{d['lo']:+.4f}, "
                 f"{d['hi']:+.4f}] | {int(d['n'])} |")
  return "\n".join(lines)


def loss_by_arm_markdown(finals: Finals, arms: Sequence[str],
                         metric: str = "loss") -> str:
  lines = ["| arm | held-out loss (mean +- std) |", "|---|---|"]
  for arm in arms:
    v = np.asarray([r[metric] for r in finals.get(arm, {}).values()])
    if len(v):
      std = f" +- {v.std(ddof=1):.4f}" if len(v) > 1 else ""
      lines.append(f"| {arm} | {v.mean():.4f}{std} |")
  return "\n".join(lines)

"""Study tables: mean +- std over seeds, laid out from the config.

The default table has a row per arm and a column per `study.metrics`
(labels from `study.metric_labels`), with the paper's numbers
(`study.paper`) in their own, labelled columns. `study.tables` adds tables
of any layout, each a dict:

    dict(title="continual, round 1",
         rows=("source", "tent"),            # default: every arm
         cols=(("gauss", "gaussian_noise"), ...),  # (label, value[, fmt])
         arm="{row}",                        # the arm of cell (row, col)
         metric="continual/r1/{col}/error",  # the metric of that cell
         fmt=".1f",
         std_cols=("mean",),                 # None: every column has +- std
         drop_empty=True)                    # leave out empty rows / cols

A cell is the mean over seeds of the run metric `metric` of arm `arm`
(both templates formatted with `row` and `col`), with `+- std` (sample std,
ddof 1) where asked and when there is more than one seed; "-" when no run
has that metric. With `drop_empty`, rows and columns without any value are
left out (a study run on a subset of the arms, or with fewer rounds than
the layout lists).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

DEFAULT_LABELS = {
    "error": "error (%)", "top5_error": "top-5 error (%)", "nll": "NLL",
    "ece": "ECE-15 (%)", "ece_10": "ECE-10 (%)", "aurc": "AURC (x1e3)",
    "eaurc": "E-AURC (x1e3)",
}

# arm -> seed -> final metrics of that run
Runs = Mapping[str, Mapping[int, Mapping[str, float]]]


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
  """Mean and sample std (ddof 1; None for one value)."""
  arr = np.asarray(values, np.float64)
  std = float(arr.std(ddof=1)) if len(arr) > 1 else None
  return float(arr.mean()), std


def aggregate(runs: Runs, metrics: Sequence[str]
              ) -> dict[str, dict[str, dict[str, float | None]]]:
  """`{arm: {metric: {"mean", "std"}}}` over the seeds that have it."""
  out = {}
  for arm, by_seed in runs.items():
    out[arm] = {}
    for m in metrics:
      values = [r[m] for r in by_seed.values() if m in r and r[m] is not None]
      if values:
        mean, std = mean_std(values)
        out[arm][m] = {"mean": mean, "std": std}
  return out


def _cell(values: list[float], fmt: str, with_std: bool) -> str:
  if not values:
    return "-"
  mean, std = mean_std(values)
  text = format(mean, fmt)
  if with_std and std is not None:
    text += f" +- {format(std, fmt)}"
  return text


def label_of(metric: str, labels: Mapping[str, str]) -> str:
  return labels.get(metric, DEFAULT_LABELS.get(metric, metric))


def default_table(runs: Runs, metrics: Sequence[str],
                  labels: Mapping[str, str],
                  paper: Mapping[str, Mapping[str, float]],
                  formats: Mapping[str, str] | None = None) -> str:
  """Rows = arms, columns = metrics, then the paper's columns."""
  paper_metrics = [m for m in metrics if any(m in p for p in paper.values())]
  head = ([f"ours: {label_of(m, labels)}" for m in metrics]
          + [f"paper: {label_of(m, labels)}" for m in paper_metrics])
  lines = ["| arm | " + " | ".join(head) + " |",
           "|---|" + "---|" * len(head)]
  for arm, by_seed in runs.items():
    cells = [_cell([r[m] for r in by_seed.values() if r.get(m) is not None],
                   (formats or {}).get(m, ".3f"), True) for m in metrics]
    arm_paper = paper.get(arm, {})
    cells += [f"{arm_paper[m]:g}" if m in arm_paper else "-"
              for m in paper_metrics]
    lines.append(f"| {arm} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def spec_table(runs: Runs, spec: Mapping[str, Any]) -> str:
  """A table laid out by one `study.tables` entry (see module docstring)."""
  unknown = set(spec) - {"title", "rows", "cols", "arm", "metric", "fmt",
                         "std_cols", "row_label", "drop_empty"}
  if unknown:
    raise ValueError(f"study.tables entry has unknown keys {sorted(unknown)}")
  rows = tuple(spec.get("rows") or runs.keys())
  cols = [tuple(c) if isinstance(c, (tuple, list)) else (str(c), c)
          for c in spec["cols"]]
  arm_t, metric_t = spec.get("arm", "{row}"), spec.get("metric", "{col}")
  fmt, std_cols = spec.get("fmt", ".3f"), spec.get("std_cols")

  def cell_values(row, col):
    arm = arm_t.format(row=row, col=col)
    metric = metric_t.format(row=row, col=col)
    return [r[metric] for r in runs.get(arm, {}).values()
            if r.get(metric) is not None]

  values = {(row, c[0]): cell_values(row, c[1]) for row in rows for c in cols}
  if spec.get("drop_empty"):
    rows = [r for r in rows if any(values[r, c[0]] for c in cols)]
    cols = [c for c in cols if any(values[r, c[0]] for r in rows)]
  lines = []
  if spec.get("title"):
    lines += [f"**{spec['title']}**", ""]
  lines += ["| " + spec.get("row_label", "arm") + " | "
            + " | ".join(str(c[0]) for c in cols) + " |",
            "|---|" + "---|" * len(cols)]
  for row in rows:
    cells = []
    for label, _, *col_fmt in cols:
      with_std = std_cols is None or label in std_cols
      cells.append(_cell(values[row, label], col_fmt[0] if col_fmt else fmt,
                         with_std))
    lines.append(f"| {row} | " + " | ".join(cells) + " |")
  return "\n".join(lines)

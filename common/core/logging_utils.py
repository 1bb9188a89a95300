"""Metric writers: JSON lines and TensorBoard event files, host 0 only."""

from __future__ import annotations

import json
import math
import os
from typing import Any, Mapping

import jax
import numpy as np


def _to_python(value: Any) -> Any:
  value = np.asarray(value)
  if value.size == 1:
    v = value.item()
    return None if isinstance(v, float) and not math.isfinite(v) else v
  return value.tolist()


class MetricWriter:
  """Writes `{step, split, **scalars}` records to `metrics.jsonl` and TB.

  Only process 0 writes; on other hosts every call is a no-op.
  """

  def __init__(self, workdir: str, tensorboard: bool = True):
    self._active = jax.process_index() == 0
    self._jsonl = None
    self._tb = None
    if not self._active:
      return
    os.makedirs(workdir, exist_ok=True)
    self.path = os.path.join(workdir, "metrics.jsonl")
    self._jsonl = open(self.path, "a", encoding="utf-8")
    if tensorboard:
      from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
      self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))

  def write(self, step: int, split: str, scalars: Mapping[str, Any]) -> None:
    if not self._active:
      return
    record = {"step": int(step), "split": split}
    record.update({k: _to_python(v) for k, v in scalars.items()})
    self._jsonl.write(json.dumps(record) + "\n")
    self._jsonl.flush()
    if self._tb is not None:
      for k, v in scalars.items():
        v = np.asarray(v)
        if v.size == 1 and np.isfinite(v):
          self._tb.add_scalar(f"{split}/{k}", float(v), int(step))

  def close(self) -> None:
    if self._jsonl is not None:
      self._jsonl.close()
      self._jsonl = None
    if self._tb is not None:
      self._tb.close()
      self._tb = None


def read_jsonl(path: str) -> list[dict[str, Any]]:
  """The records of a JSON-lines file.

  A last line cut short by a kill mid-write is dropped (the run resumes
  from a checkpoint before it anyway); a bad line elsewhere raises.
  """
  with open(path, encoding="utf-8") as f:
    lines = [line for line in f if line.strip()]
  records = []
  for i, line in enumerate(lines):
    try:
      records.append(json.loads(line))
    except json.JSONDecodeError as e:
      if i == len(lines) - 1:
        break
      raise ValueError(f"{path} line {i + 1} is not JSON ({e}); the log is "
                       "corrupt: move it away to resume") from e
  return records


def truncate_jsonl(path: str, last_step: int) -> None:
  """Drops records past `last_step` (left by an interrupted run)."""
  if not os.path.exists(path):
    return
  kept = [r for r in read_jsonl(path) if r["step"] <= last_step]
  with open(path, "w", encoding="utf-8") as f:
    f.writelines(json.dumps(r) + "\n" for r in kept)

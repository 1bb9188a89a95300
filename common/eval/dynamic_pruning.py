"""Evaluator `dynamic_pruning`: accuracy and per-input FLOPs of a gated model.

For models that return `flops_ratio [b]` (this input's multiply-accumulates
over the ungated network's, e.g. `common/models/gated_cnn.py`): the usual
classification metrics plus the mean FLOPs ratio over the eval split, the
reduction `100 * (1 - ratio)` (the official FTWT printout), its spread
over inputs, and, when the method predicts them (FTWT), the mask
predictors' agreement with their targets (`gate_accuracy`) and the kept
channel fractions (`gate_keep` predicted, `target_keep` targets).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from common.core import sharding as sharding_lib
from common.eval import evaluators
from common.eval import metrics as metrics_lib

_GATE_KEYS = ("gate_accuracy", "gate_keep", "target_keep")


@evaluators.register_evaluator("dynamic_pruning")
def dynamic_pruning(setup: Any, state: Any) -> dict[str, float]:
  """Classification metrics + `flops_ratio`, `flops_reduction` (%),
  `flops_ratio_std` (over inputs) and the gate metrics when predicted."""
  keys = ("logits", "flops_ratio")
  if setup.method.name == "ftwt":
    keys += _GATE_KEYS
  batches = setup.eval_batches()
  cols = {k: [] for k in keys + ("label", "mask")}
  for batch in batches:
    out = setup.eval_step(state, batch, setup.hparams, output_keys=keys)
    for k in keys:
      cols[k].append(sharding_lib.gather_to_host(out[k]))
    cols["label"].append(sharding_lib.gather_to_host(batch["label"]))
    cols["mask"].append(
        sharding_lib.gather_to_host(batch["mask"]) if "mask" in batch
        else np.ones(len(cols["label"][-1]), bool))
  arr = {k: np.concatenate(v) for k, v in cols.items()}
  valid = arr["mask"].astype(bool)
  result = metrics_lib.classification_metrics(arr["logits"], arr["label"],
                                              valid)
  ratio = arr["flops_ratio"][valid]
  result.update(flops_ratio=float(ratio.mean()),
                flops_reduction=float(100.0 * (1.0 - ratio.mean())),
                flops_ratio_std=float(ratio.std()))
  for k in _GATE_KEYS:
    if k in arr:
      result[k] = float(arr[k][valid].mean())
  return result

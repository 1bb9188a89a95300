"""Evaluator `calibration_shift`: calibration in and out of distribution.

Scores the run's (calibrated) predictions with the harness's
classification metrics (error, NLL, ECE-15, ECE-10, AURC, E-AURC) on the
eval split, and on every dataset of `config.eval.shift.datasets` (e.g. the
corrupted test sets `digits_corrupted/<corruption>_<severity>`), reported
as `shift/<metric>`: the mean over those datasets (each weighted equally).
`config.eval.shift`:

  datasets: TFDS names of the shifted test sets ("" entries not allowed).
  split: the split read from each (e.g. "test", "test[:2000]").
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from common.core import sharding as sharding_lib
from common.data import loader as loader_lib
from common.data import sources
from common.eval import evaluators
from common.eval import metrics as metrics_lib


def _logits_of(setup: Any, state: Any, source: Any
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  logits, labels, masks = [], [], []
  for local in loader_lib.eval_batches(
      source, setup.config.train.eval_batch_size, jax.process_index(),
      jax.process_count()):
    batch = sharding_lib.shard_batch(local, setup.mesh)
    out = setup.eval_step(state, batch, setup.hparams)
    logits.append(sharding_lib.gather_to_host(out["logits"]))
    labels.append(sharding_lib.gather_to_host(batch["label"]))
    masks.append(sharding_lib.gather_to_host(batch["mask"]))
  return (np.concatenate(logits), np.concatenate(labels),
          np.concatenate(masks))


def shift_settings(config: Any) -> tuple[tuple[str, ...], str]:
  """`(datasets, split)` of `config.eval.shift`, checked."""
  if "shift" not in config.eval:
    raise ValueError("evaluator calibration_shift needs config.eval.shift "
                     "= ConfigDict(datasets=(...), split='test')")
  datasets = tuple(config.eval.shift.datasets)
  if not datasets or not all(datasets):
    raise ValueError(f"config.eval.shift.datasets={datasets!r}; give one "
                     "or more TFDS dataset names")
  return datasets, config.eval.shift.split


@evaluators.register_evaluator("calibration_shift")
def calibration_shift(setup: Any, state: Any) -> dict[str, float]:
  """In-distribution metrics (unprefixed) and their mean over the shifted
  test sets (`shift/<metric>`)."""
  result = evaluators.classification(setup, state)
  datasets, split = shift_settings(setup.config)
  d = setup.config.data
  per_set = []
  for name in datasets:
    source = sources.open_split(
        name, split, d.data_dir or None, image_size=d.image_size or None,
        label_key=d.label_key or None, classes=tuple(d.classes))
    per_set.append(metrics_lib.classification_metrics(
        *_logits_of(setup, state, source)))
  for key in per_set[0]:
    result[f"shift/{key}"] = float(np.mean([m[key] for m in per_set]))
  return result

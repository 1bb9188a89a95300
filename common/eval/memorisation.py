"""Memorisation of noisy training labels (`config.eval.name = "noisy_labels"`).

Early learning then memorisation (Arpit et al. 2017; ELR, arXiv 2007.00151,
Fig. 1): on the training examples whose label was corrupted, the fraction
predicted as their *true* label rises first, then falls while the fraction
predicted as their *noisy* label rises. This evaluator returns the held-out
classification metrics plus, over the whole training split:

  corrupted_pred_true    accuracy of corrupted examples against true labels
  corrupted_pred_noisy   fraction of corrupted examples predicted as their
                         noisy label (memorised)
  clean_pred_true        accuracy of the correctly labelled examples
  corrupted_fraction     fraction of the training labels that are wrong

(the `train_`-less names are the same whatever the noise kind; with no
noise the corrupted entries are NaN).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from common.core import sharding as sharding_lib
from common.data import loader as loader_lib
from common.eval import evaluators


def train_predictions(setup: Any, state: Any
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """`(predicted, noisy, clean)` int `[n]` over the training split."""
  source = setup.train_source
  if source is None:
    raise ValueError("the noisy_labels evaluator needs a dataset split "
                     "(data.source='tfds'), not a generator")
  preds, noisy, clean = [], [], []
  for local in loader_lib.eval_batches(
      source, setup.config.train.eval_batch_size, jax.process_index(),
      jax.process_count()):
    batch = sharding_lib.shard_batch(local, setup.mesh)
    out = setup.eval_step(state, batch, setup.hparams)
    mask = sharding_lib.gather_to_host(batch["mask"])
    preds.append(sharding_lib.gather_to_host(out["logits"]).argmax(-1)[mask])
    label = sharding_lib.gather_to_host(batch["label"])
    noisy.append(label[mask])
    clean.append(sharding_lib.gather_to_host(batch["clean_label"])[mask]
                 if "clean_label" in batch else label[mask])
  return tuple(np.concatenate(x) for x in (preds, noisy, clean))


def memorisation_metrics(predicted: np.ndarray, noisy: np.ndarray,
                         clean: np.ndarray) -> dict[str, float]:
  """The four fractions of the module doc from int `[n]` arrays."""
  corrupted = noisy != clean

  def mean(x):
    return float(np.mean(x)) if x.size else float("nan")
  return {
      "corrupted_pred_true": mean(predicted[corrupted] == clean[corrupted]),
      "corrupted_pred_noisy": mean(predicted[corrupted] == noisy[corrupted]),
      "clean_pred_true": mean(predicted[~corrupted] == clean[~corrupted]),
      "corrupted_fraction": mean(corrupted),
  }


@evaluators.register_evaluator("noisy_labels")
def noisy_labels(setup: Any, state: Any) -> dict[str, float]:
  """Held-out classification metrics + memorisation on the training split."""
  result = evaluators.classification(setup, state)
  result.update(memorisation_metrics(*train_predictions(setup, state)))
  return result

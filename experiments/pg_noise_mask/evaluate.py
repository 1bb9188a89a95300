"""Evaluator `seen_unseen`: accuracy on the trained classes and a linear
probe on classes the model never saw (`config.eval.name = "seen_unseen"`).

The paper's two claims on one model: classification on the training task
(the `classification` evaluator on the run's eval split, the seen classes
`data.classes`) and generalisation to unseen concepts, measured here as the
closed-form ridge probe of `common/eval/linear_probe.py` on the frozen
`features` of images of the held-out classes `eval.unseen_classes` (same
dataset; probe fitted on the first `eval.probe_train_examples` of
`eval.probe_train_split`, scored on `eval.probe_test_split`), reported as
`unseen_probe_acc` (%).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from common.data import sources
from common.eval import evaluators
from common.eval import linear_probe
from common.eval import metrics as metrics_lib

_CHUNK = 1000


def _features(setup: Any, state: Any, source: Any, n: int
              ) -> tuple[np.ndarray, np.ndarray]:
  """`(features [n, d], labels [n])` of the first `n` examples."""
  key = setup.config.data.input_key
  feats, labels = [], []
  for start in range(0, n, _CHUNK):
    batch = source.get(np.arange(start, min(start + _CHUNK, n)))
    out = evaluators.predict(setup, state, {key: batch["image"]},
                             ("features",))
    feats.append(out["features"].reshape(len(batch["image"]), -1))
    labels.append(np.asarray(batch["label"]))
  return np.concatenate(feats), np.concatenate(labels)


def probe(setup: Any, state: Any, classes: tuple[int, ...]) -> float:
  """Ridge-probe test accuracy (%) on `classes` of the run's dataset."""
  cfg, data = setup.config.eval, setup.config.data
  kw = dict(image_size=data.get("image_size", 0) or None,
            classes=tuple(classes))
  train = sources.open_split(data.name, cfg.probe_train_split,
                             data.get("data_dir", "") or None, **kw)
  test = sources.open_split(data.name, cfg.probe_test_split,
                            data.get("data_dir", "") or None, **kw)
  n_train = min(int(cfg.probe_train_examples) or len(train), len(train))
  x_train, y_train = _features(setup, state, train, n_train)
  x_test, y_test = _features(setup, state, test, len(test))
  return linear_probe.probe_accuracy(x_train, y_train, x_test, y_test,
                                     len(classes), float(cfg.probe_ridge))


@evaluators.register_evaluator("seen_unseen")
def evaluate(setup: Any, state: Any) -> dict[str, float]:
  """Classification metrics on the eval split and `unseen_probe_acc` (%)."""
  cfg = setup.config.eval
  unseen = tuple(int(c) for c in cfg.unseen_classes)
  seen = tuple(int(c) for c in setup.config.data.classes)
  if not unseen or set(unseen) & set(seen):
    raise ValueError(
        f"evaluator seen_unseen: eval.unseen_classes={unseen} must be "
        f"non-empty and disjoint from data.classes={seen}")
  out = metrics_lib.classification_metrics(
      *evaluators.eval_arrays(setup, state))
  out["accuracy"] = 100.0 - out["error"]
  out["unseen_probe_acc"] = probe(setup, state, unseen)
  return out

"""Linear-probe accuracy of frozen features (evaluator `linear_probe`).

A closed-form ridge-regression probe on one-hot targets: features of the
probe's training examples are standardised (train mean / std), the
classifier `W = (X^T X + lam n I)^-1 X^T Y` (with a bias, float64) is fitted
and its argmax scored on the probe's test split. Deterministic and
sub-second at the CPU studies' sizes, so a run is probed at every
evaluation. (Random Teachers' official prober trains a `nn.Linear` with
AdamW for `probing_epochs`; the ridge probe is the closed-form stand-in,
the same for every arm.)

Config (`config.eval`, all optional):
  probe_keys: model outputs to probe, default `("features",)`; a method's
    `predict` may add more (Random Teachers' "teacher_features"). Each key
    `<prefix>features` is reported as `<prefix>probe_acc` (%).
  probe_data: a TFDS dataset to probe on ("" = the run's own train/eval
    splits; required with a generator source, e.g. training on noise and
    probing on digits).
  probe_train_split, probe_test_split: its splits ("train", "test").
  probe_train_examples: first n training examples (0 = all).
  probe_ridge: lam (default 1e-3).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from common.eval import evaluators

DEFAULT_RIDGE = 1e-3
_CHUNK = 1024   # examples per eval-step call


def ridge_probe_fit(x: np.ndarray, y: np.ndarray, num_classes: int,
                    ridge: float = DEFAULT_RIDGE
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """`(mean [d], scale [d], weights [d + 1, C])` of the ridge probe.

  Args:
    x: `[n, d]` features. y: `[n]` int labels in `[0, num_classes)`.
    num_classes: C. ridge: lam, relative to n (scale-free in n).
  """
  x = np.asarray(x, np.float64).reshape(len(x), -1)
  mean, scale = x.mean(0), x.std(0) + 1e-8
  z = np.concatenate([(x - mean) / scale, np.ones((len(x), 1))], 1)
  targets = np.eye(num_classes)[np.asarray(y)]
  gram = z.T @ z + ridge * len(x) * np.eye(z.shape[1])
  return mean, scale, np.linalg.solve(gram, z.T @ targets)


def ridge_probe_predict(fit: tuple[np.ndarray, np.ndarray, np.ndarray],
                        x: np.ndarray) -> np.ndarray:
  """Predicted labels `[n]` of features `x` `[n, d]`."""
  mean, scale, w = fit
  x = np.asarray(x, np.float64).reshape(len(x), -1)
  z = np.concatenate([(x - mean) / scale, np.ones((len(x), 1))], 1)
  return np.argmax(z @ w, 1)


def probe_accuracy(train_x: np.ndarray, train_y: np.ndarray,
                   test_x: np.ndarray, test_y: np.ndarray, num_classes: int,
                   ridge: float = DEFAULT_RIDGE) -> float:
  """Test accuracy (%) of the ridge probe fitted on the training features."""
  fit = ridge_probe_fit(train_x, train_y, num_classes, ridge)
  return 100.0 * float(np.mean(ridge_probe_predict(fit, test_x) == test_y))


def ridge_probe_loo(x: np.ndarray, y: np.ndarray, num_classes: int,
                    ridges: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0,
                                                 10.0, 100.0)
                    ) -> tuple[float, np.ndarray]:
  """`(best ridge, leave-one-out accuracies [len(ridges)] %)` of the ridge
  probe on `x [n, d]`, `y [n]`, by the closed-form LOO residuals of one SVD
  (`yhat_-i = (yhat_i - h_ii y_i) / (1 - h_ii)`, `H = Z (Z^T Z + lam n I)^-1
  Z^T`, the same standardised `Z` with bias column as `ridge_probe_fit`).
  Ties go to the larger ridge. For few-label probes (T-JEPA's 1% labels).
  """
  x = np.asarray(x, np.float64).reshape(len(x), -1)
  z = np.concatenate([(x - x.mean(0)) / (x.std(0) + 1e-8),
                      np.ones((len(x), 1))], 1)
  targets = np.eye(num_classes)[np.asarray(y)]
  u, s, _ = np.linalg.svd(z, full_matrices=False)
  proj = u.T @ targets
  accs = []
  for lam in ridges:
    shrink = s * s / (s * s + lam * len(x))
    fitted = u @ (shrink[:, None] * proj)
    h = np.clip(np.sum(u * u * shrink, 1), 0.0, 1.0 - 1e-9)[:, None]
    loo = (fitted - h * targets) / (1.0 - h)
    accs.append(100.0 * float(np.mean(np.argmax(loo, 1) == y)))
  accs = np.asarray(accs)
  best = max(i for i in range(len(ridges)) if accs[i] == accs.max())
  return float(ridges[best]), accs


def _splits(setup: Any) -> tuple[Any, Any]:
  """The probe's (train, test) sources."""
  cfg, data = setup.config.eval, setup.config.data
  name = cfg.get("probe_data", "")
  if not name:
    if setup.train_source is None:
      raise ValueError(
          "evaluator linear_probe: config.eval.probe_data is empty and the "
          f"run trains on generator {data.name!r}; name a TFDS dataset to "
          "probe on (e.g. 'digits')")
    return setup.train_source, setup.eval_source
  from common.data import sources  # pylint: disable=g-import-not-at-top
  kw = dict(image_size=data.get("image_size", 0) or None)
  return (sources.open_split(name, cfg.get("probe_train_split", "train"),
                             data.get("data_dir", "") or None, **kw),
          sources.open_split(name, cfg.get("probe_test_split", "test"),
                             data.get("data_dir", "") or None, **kw))


def _features(setup: Any, state: Any, source: Any, n: int,
              keys: tuple[str, ...]) -> tuple[dict[str, np.ndarray],
                                              np.ndarray]:
  """`({key: [n, d]}, labels [n])` of the first n examples of `source`."""
  input_key = setup.config.data.input_key
  outs, labels = {k: [] for k in keys}, []
  for start in range(0, n, _CHUNK):
    batch = source.get(np.arange(start, min(start + _CHUNK, n)))
    pred = evaluators.predict(setup, state, {input_key: batch["image"]},
                              keys)
    for k in keys:
      outs[k].append(pred[k].reshape(len(batch["image"]), -1))
    labels.append(np.asarray(batch["label"]))
  return ({k: np.concatenate(v) for k, v in outs.items()},
          np.concatenate(labels))


@evaluators.register_evaluator("linear_probe")
def evaluate(setup: Any, state: Any) -> dict[str, float]:
  """`<prefix>probe_acc` (%) for each probed output, and the example counts.
  """
  cfg = setup.config.eval
  keys = tuple(cfg.get("probe_keys", ("features",)))
  bad = [k for k in keys if not k.endswith("features")]
  if bad:
    raise ValueError(f"config.eval.probe_keys={keys}: {bad} do not end in "
                     "'features' (reported as '<prefix>probe_acc')")
  train, test = _splits(setup)
  n_train = int(cfg.get("probe_train_examples", 0)) or len(train)
  n_train = min(n_train, len(train))
  x_train, y_train = _features(setup, state, train, n_train, keys)
  x_test, y_test = _features(setup, state, test, len(test), keys)
  classes = int(max(y_train.max(), y_test.max()) + 1)
  ridge = float(cfg.get("probe_ridge", DEFAULT_RIDGE))
  out = {k[:-len("features")] + "probe_acc": probe_accuracy(
      x_train[k], y_train, x_test[k], y_test, classes, ridge) for k in keys}
  out.update(probe_train_examples=float(n_train),
             probe_test_examples=float(len(test)))
  return out

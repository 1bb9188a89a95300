"""Confusion-matrix metrics of a classifier: F1, F-beta, balanced accuracy,
G-mean, precision, recall, specificity (binary and macro over classes).

Host-side numpy, float64, on a whole evaluation set, like
`common.eval.metrics`: `[n, C]` scores, `[n]` int labels, an optional
boolean `[n]` mask (False rows, e.g. batch padding, dropped). The
prediction is the argmax (ties go to the lower class index); with C = 2 it
is "positive iff p(class 1) > 0.5", the rounding of a sigmoid output used
by the AnyLoss code (np.round(0.5) = 0). Values are fractions in [0, 1],
the scale of the AnyLoss paper's tables.

Definitions (they equal scikit-learn's, `zero_division=0`, which the tests
check):

* binary, positive class 1: precision TP/(TP+FP), recall (TPR)
  TP/(TP+FN), specificity (TNR) TN/(TN+FP), F-beta
  (1+b^2) TP / ((1+b^2) TP + b^2 FN + FP), balanced accuracy
  (TPR+TNR)/2, G-mean sqrt(TPR * TNR) (as in the AnyLoss paper and
  imbalanced-learn's `geometric_mean_score`, binary case).
* multi-class: per-class one-vs-rest precision, recall and F-beta,
  averaged with equal weight ("macro"); balanced accuracy = mean recall
  over classes (sklearn's `balanced_accuracy_score`); G-mean = geometric
  mean of the per-class recalls (imbalanced-learn, `average="multiclass"`).
  A class absent from the labels and the predictions scores 0, as
  sklearn does with `zero_division=0`; in balanced accuracy and G-mean
  only classes present in the labels count.

The `classification_confusion` evaluator (any classification config:
`config.eval.name = "classification_confusion"`) reports these next to the
`classification` evaluator's error, NLL, ECE and AURC.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from common.eval import evaluators
from common.eval import metrics as metrics_lib


def confusion_matrix(scores: ArrayLike, labels: ArrayLike,
                     mask: ArrayLike | None = None) -> np.ndarray:
  """`[C, C]` int64 counts, rows = true class, columns = predicted class.

  Args:
    scores: `[n, C]` logits or probabilities (argmax predicts).
    labels: `[n]` int labels in [0, C).
    mask: optional boolean `[n]`, False rows excluded.
  """
  scores, labels = metrics_lib._select(scores, labels, mask)  # pylint: disable=protected-access
  c = scores.shape[1]
  pred = np.argmax(scores, axis=1)
  return np.bincount(labels * c + pred, minlength=c * c).reshape(c, c)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
  """num / den, 0 where den == 0 (sklearn's zero_division=0)."""
  num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
  return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def per_class(cm: ArrayLike, beta: float = 1.0) -> dict[str, np.ndarray]:
  """One-vs-rest `[C]` precision, recall, specificity and F-beta.

  Args:
    cm: `[C, C]` confusion matrix (rows true, columns predicted).
    beta: the F-beta weight of recall.
  """
  cm = np.asarray(cm, np.float64)
  tp = np.diag(cm)
  fp = cm.sum(axis=0) - tp
  fn = cm.sum(axis=1) - tp
  tn = cm.sum() - tp - fp - fn
  b2 = float(beta) ** 2
  return {"precision": _ratio(tp, tp + fp), "recall": _ratio(tp, tp + fn),
          "specificity": _ratio(tn, tn + fp),
          "f_beta": _ratio((1 + b2) * tp, (1 + b2) * tp + b2 * fn + fp),
          "support": cm.sum(axis=1)}


def binary_metrics(cm: ArrayLike, beta: float = 1.0) -> dict[str, float]:
  """Metrics of a `[2, 2]` confusion matrix, class 1 positive.

  Returns:
    accuracy, precision, recall, specificity, f1, f_beta (with `beta`),
    balanced_accuracy, g_mean and f1_macro (mean F1 of both classes).
  """
  cm = np.asarray(cm, np.float64)
  if cm.shape != (2, 2):
    raise ValueError(f"binary_metrics needs a [2, 2] confusion matrix, got "
                     f"shape {cm.shape}")
  (tn, fp), (fn, tp) = cm
  tpr, tnr = _ratio(tp, tp + fn), _ratio(tn, tn + fp)
  b2 = float(beta) ** 2
  f1_both = per_class(cm, 1.0)["f_beta"]
  return {
      "accuracy": float(_ratio(tp + tn, cm.sum())),
      "precision": float(_ratio(tp, tp + fp)),
      "recall": float(tpr),
      "specificity": float(tnr),
      "f1": float(_ratio(2 * tp, 2 * tp + fn + fp)),
      "f_beta": float(_ratio((1 + b2) * tp, (1 + b2) * tp + b2 * fn + fp)),
      "balanced_accuracy": float((tpr + tnr) / 2),
      "g_mean": float(np.sqrt(tpr * tnr)),
      "f1_macro": float(np.mean(f1_both)),
  }


def multiclass_metrics(cm: ArrayLike, beta: float = 1.0) -> dict[str, float]:
  """Macro-averaged metrics of a `[C, C]` confusion matrix.

  Returns:
    accuracy, precision_macro, recall_macro, f1_macro, f_beta_macro,
    balanced_accuracy and g_mean (see the module docstring).
  """
  cm = np.asarray(cm, np.float64)
  pc, f1 = per_class(cm, beta), per_class(cm, 1.0)["f_beta"]
  present = pc["support"] > 0
  recalls = pc["recall"][present]
  return {
      "accuracy": float(_ratio(np.trace(cm), cm.sum())),
      "precision_macro": float(np.mean(pc["precision"])),
      "recall_macro": float(np.mean(pc["recall"])),
      "f1_macro": float(np.mean(f1)),
      "f_beta_macro": float(np.mean(pc["f_beta"])),
      "balanced_accuracy": float(np.mean(recalls)) if recalls.size else 0.0,
      "g_mean": (float(np.prod(recalls) ** (1.0 / recalls.size))
                 if recalls.size else 0.0),
  }


def confusion_metrics(scores: ArrayLike, labels: ArrayLike,
                      mask: ArrayLike | None = None,
                      beta: float = 1.0) -> dict[str, float]:
  """Every confusion-matrix metric of an eval set (binary if C = 2).

  Args:
    scores: `[n, C]` logits or probabilities.
    labels: `[n]` int labels.
    mask: optional boolean `[n]`, False rows excluded.
    beta: the weight of `f_beta`.

  Returns:
    `binary_metrics` for C = 2 (class 1 positive), else
    `multiclass_metrics`; NaN values for an empty selection.
  """
  cm = confusion_matrix(scores, labels, mask)
  out = (binary_metrics(cm, beta) if cm.shape == (2, 2)
         else multiclass_metrics(cm, beta))
  if not cm.sum():
    out = {k: float("nan") for k in out}
  return out


@evaluators.register_evaluator("classification_confusion")
def classification_confusion(setup: Any, state: Any) -> dict[str, float]:
  """The `classification` evaluator's metrics plus `confusion_metrics`."""
  logits, labels, masks = evaluators.eval_arrays(setup, state)
  return {**metrics_lib.classification_metrics(logits, labels, masks),
          **confusion_metrics(logits, labels, masks)}

"""Confusion-matrix metrics: parity with scikit-learn on random and edge
cases, binary and multi-class, with masks."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from common.eval import confusion_metrics as cm_lib


def _sk_gmean(labels, pred, classes):
  """imbalanced-learn's G-mean (multiclass: geometric mean of the recalls
  of the classes present in `labels`), written from sklearn's recalls."""
  recalls = sk.recall_score(labels, pred, labels=classes, average=None,
                            zero_division=0)
  present = np.isin(classes, labels)
  return float(np.prod(recalls[present]) ** (1.0 / present.sum()))


def _cases():
  rng = np.random.default_rng(0)
  for c in (2, 3, 5):
    for n in (7, 50, 400):
      scores = rng.normal(size=(n, c))
      labels = rng.integers(0, c, n)
      # Imbalanced labels too (class 0 dominant).
      labels = np.where(rng.random(n) < 0.6, 0, labels)
      mask = rng.random(n) < 0.85
      yield scores, labels, mask


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
@pytest.mark.parametrize("scores,labels,mask", list(_cases()))
def test_matches_sklearn(scores, labels, mask):
  c = scores.shape[1]
  out = cm_lib.confusion_metrics(scores, labels, mask, beta=2.0)
  y, pred = labels[mask], np.argmax(scores[mask], axis=1)
  classes = np.arange(c)
  np.testing.assert_array_equal(
      cm_lib.confusion_matrix(scores, labels, mask),
      sk.confusion_matrix(y, pred, labels=classes))
  assert out["accuracy"] == pytest.approx(sk.accuracy_score(y, pred))
  assert out["balanced_accuracy"] == pytest.approx(
      sk.balanced_accuracy_score(y, pred))
  assert out["g_mean"] == pytest.approx(_sk_gmean(y, pred, classes))
  assert out["f1_macro"] == pytest.approx(sk.f1_score(
      y, pred, labels=classes, average="macro", zero_division=0))
  if c == 2:
    kw = dict(pos_label=1, average="binary", zero_division=0)
    assert out["f1"] == pytest.approx(sk.f1_score(y, pred, **kw))
    assert out["f_beta"] == pytest.approx(
        sk.fbeta_score(y, pred, beta=2.0, **kw))
    assert out["precision"] == pytest.approx(sk.precision_score(y, pred,
                                                                **kw))
    assert out["recall"] == pytest.approx(sk.recall_score(y, pred, **kw))
    assert out["specificity"] == pytest.approx(
        sk.recall_score(y, pred, pos_label=0, zero_division=0))
  else:
    kw = dict(labels=classes, average="macro", zero_division=0)
    assert out["precision_macro"] == pytest.approx(
        sk.precision_score(y, pred, **kw))
    assert out["recall_macro"] == pytest.approx(sk.recall_score(y, pred,
                                                                **kw))
    assert out["f_beta_macro"] == pytest.approx(
        sk.fbeta_score(y, pred, beta=2.0, **kw))


def test_binary_by_hand():
  # TN=3, FP=1, FN=2, TP=4 (rows true, columns predicted).
  out = cm_lib.binary_metrics(np.array([[3, 1], [2, 4]]), beta=0.5)
  tpr, tnr = 4 / 6, 3 / 4
  assert out["accuracy"] == pytest.approx(0.7)
  assert out["precision"] == pytest.approx(0.8)
  assert out["recall"] == pytest.approx(tpr)
  assert out["f1"] == pytest.approx(8 / (8 + 2 + 1))
  assert out["f_beta"] == pytest.approx(1.25 * 4 / (1.25 * 4 + 0.25 * 2 + 1))
  assert out["balanced_accuracy"] == pytest.approx((tpr + tnr) / 2)
  assert out["g_mean"] == pytest.approx(np.sqrt(tpr * tnr))


def test_all_negative_predictions_score_zero_not_nan():
  scores = np.tile([[1.0, 0.0]], (10, 1))        # always class 0
  labels = np.array([0] * 9 + [1])
  out = cm_lib.confusion_metrics(scores, labels)
  assert out["f1"] == 0.0 and out["precision"] == 0.0
  assert out["g_mean"] == 0.0 and out["balanced_accuracy"] == 0.5
  assert out["accuracy"] == pytest.approx(0.9)
  assert np.isnan(cm_lib.confusion_metrics(
      scores, labels, np.zeros(10, bool))["f1"])


def test_tie_predicts_negative_like_rounding_half():
  # p(class 1) = 0.5 exactly: np.round(0.5) = 0 in the AnyLoss code.
  out = cm_lib.confusion_matrix(np.zeros((1, 2)), np.array([1]))
  np.testing.assert_array_equal(out, [[0, 0], [1, 0]])


def test_evaluator_is_registered():
  from common.eval import evaluators  # pylint: disable=g-import-not-at-top
  assert "classification_confusion" in evaluators.EVALUATORS
  assert evaluators.get_evaluator("classification_confusion") is (
      cm_lib.classification_confusion)

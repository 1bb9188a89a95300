"""Segmentation metrics and the `segmentation` evaluator.

Every metric is computed on the host from integer maps: `pred [n, h, w]`
(argmax of the logits) and `label [n, h, w]`; pixels whose label is
`IGNORE` (255, boundaries) or outside `[0, num_classes)`, and the rows of
padded eval batches, count nowhere.

* `confusion` `[C, C]`: counts of (label, prediction) pairs.
* per-class Dice `2 TP / (2 TP + FP + FN)` and IoU `TP / (TP + FP + FN)`
  from the confusion of the whole set (NaN for a class absent from both);
  mIoU = mean IoU over the classes present (PASCAL VOC's).
* 3-D Dice (Bateson et al.'s SFDA evaluation, official `dice3d.py`):
  per volume (a stack of slices) and class `(2 |P & G| + 1e-8) /
  (|P| + |G| + 1e-8)`, so a class absent from both a volume's prediction
  and its mask scores 1, then the mean over volumes.
* FB-IoU (few-shot segmentation): the mean of the foreground and the
  background IoU of binary maps (foreground = any class but 0).

The evaluator also reports the mean Dice over the foreground classes
(`dice_fg`, `dice3d_fg`: class 0 is the background, as in medical
segmentation tables).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from common.core import sharding as sharding_lib
from common.eval import evaluators

IGNORE = 255


def confusion(pred: np.ndarray, label: np.ndarray, num_classes: int,
              valid: np.ndarray | None = None) -> np.ndarray:
  """int64 `[C, C]` counts, rows = label, columns = prediction.

  Args:
    pred: int `[...]` predicted classes.
    label: int `[...]` true classes; `IGNORE` or out-of-range entries are
      dropped.
    num_classes: C.
    valid: optional bool `[n]` (rows) or label-shaped; False entries
      dropped.
  """
  pred, label = np.asarray(pred), np.asarray(label)
  keep = (label >= 0) & (label < num_classes)
  if valid is not None:
    valid = np.asarray(valid, bool)
    valid = valid.reshape(valid.shape + (1,) * (label.ndim - valid.ndim))
    keep &= np.broadcast_to(valid, label.shape)
  index = label[keep].astype(np.int64) * num_classes + pred[keep]
  return np.bincount(index, minlength=num_classes**2).reshape(
      num_classes, num_classes)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(den > 0, num / np.maximum(den, 1), np.nan)


def dice_per_class(conf: np.ndarray) -> np.ndarray:
  """float `[C]` Dice from a confusion matrix (NaN: class never seen)."""
  tp = np.diag(conf).astype(np.float64)
  return _ratio(2 * tp, conf.sum(0) + conf.sum(1))


def iou_per_class(conf: np.ndarray) -> np.ndarray:
  """float `[C]` IoU from a confusion matrix (NaN: class never seen)."""
  tp = np.diag(conf).astype(np.float64)
  return _ratio(tp, conf.sum(0) + conf.sum(1) - tp)


def fb_iou(pred: np.ndarray, label: np.ndarray,
           valid: np.ndarray | None = None) -> float:
  """Mean of foreground and background IoU of the binarised maps."""
  label = np.asarray(label)
  binary_label = np.where(label == IGNORE, IGNORE, (label > 0).astype(int))
  conf = confusion((np.asarray(pred) > 0).astype(int), binary_label, 2,
                   valid)
  return float(np.nanmean(iou_per_class(conf)))


def dice_3d(pred: np.ndarray, label: np.ndarray, volume: np.ndarray,
            num_classes: int, valid: np.ndarray | None = None) -> np.ndarray:
  """float `[C]`: per-volume Dice (smoothed as the official code) averaged
  over the volumes.

  Args:
    pred, label: int `[n, h, w]` maps of `n` slices.
    volume: int `[n]` volume id of every slice.
    num_classes: C.
    valid: optional bool `[n]` or `[n, h, w]`.
  """
  volume = np.asarray(volume)
  scores = []
  for v in np.unique(volume if valid is None or np.ndim(valid) != 1
                     else volume[np.asarray(valid, bool)]):
    rows = volume == v
    conf = confusion(pred[rows], label[rows], num_classes,
                     None if valid is None else np.asarray(valid)[rows])
    tp = np.diag(conf).astype(np.float64)
    scores.append((2 * tp + 1e-8) / (conf.sum(0) + conf.sum(1) + 1e-8))
  return np.mean(scores, axis=0)


def segmentation_metrics(pred: np.ndarray, label: np.ndarray,
                         num_classes: int, valid: np.ndarray | None = None,
                         volume: np.ndarray | None = None
                         ) -> dict[str, float]:
  """mIoU, FB-IoU, pixel accuracy, per-class Dice and IoU (3-D Dice with
  `volume`), in %, as a flat dict (`dice/c1`, `dice3d_fg`, ...)."""
  conf = confusion(pred, label, num_classes, valid)
  dice, iou = dice_per_class(conf), iou_per_class(conf)
  out = {"miou": np.nanmean(iou), "fb_iou": fb_iou(pred, label, valid),
         "pixel_acc": np.trace(conf) / max(conf.sum(), 1),
         "dice_fg": np.nanmean(dice[1:]) if num_classes > 1 else dice[0]}
  out.update({f"dice/c{c}": dice[c] for c in range(num_classes)})
  out.update({f"iou/c{c}": iou[c] for c in range(num_classes)})
  if volume is not None:
    d3 = dice_3d(pred, label, volume, num_classes, valid)
    out["dice3d_fg"] = np.mean(d3[1:]) if num_classes > 1 else d3[0]
    out.update({f"dice3d/c{c}": d3[c] for c in range(num_classes)})
  return {k: 100.0 * float(v) for k, v in out.items()}


def eval_maps(setup: Any, state: Any
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """Host `(pred [n, h, w], label [n, h, w], index [n], mask [n])` over the
  eval split (argmax of the eval step's logits)."""
  preds, labels, index, masks = [], [], [], []
  for batch in setup.eval_batches():
    out = setup.eval_step(state, batch, setup.hparams)
    preds.append(sharding_lib.gather_to_host(
        out["logits"].argmax(-1)).astype(np.int32))
    labels.append(sharding_lib.gather_to_host(batch["label"]))
    index.append(sharding_lib.gather_to_host(batch["index"]))
    masks.append(sharding_lib.gather_to_host(batch["mask"]))
  return tuple(np.concatenate(x) for x in (preds, labels, index, masks))


@evaluators.register_evaluator("segmentation")
def evaluate(setup: Any, state: Any) -> dict[str, float]:
  """Segmentation metrics of `state` on the eval split.

  3-D Dice groups consecutive records into volumes of
  `config.eval.slices_per_volume` slices (record `i` in volume `i // s`;
  `segshapes/source|target`: 8) when that key is set and positive.
  """
  pred, label, index, mask = eval_maps(setup, state)
  spv = setup.config.eval.get("slices_per_volume", 0)
  volume = index // spv if spv else None
  return segmentation_metrics(pred, label, setup.run.num_classes, mask,
                              volume)

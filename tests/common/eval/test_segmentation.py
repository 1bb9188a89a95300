"""Segmentation metrics on hand-computed cases."""

import numpy as np
import pytest

from common.eval import segmentation as seg


def _maps():
  # Two 2x3 slices, classes 0..2, one ignored pixel (255).
  label = np.array([[[0, 0, 1], [1, 2, 255]],
                    [[0, 0, 0], [0, 0, 0]]])
  pred = np.array([[[0, 1, 1], [1, 1, 2]],
                   [[0, 0, 0], [0, 0, 2]]])
  return pred, label


def test_confusion_dice_iou_by_hand():
  pred, label = _maps()
  conf = seg.confusion(pred, label, 3)
  # label 0: 8 pixels, 7 -> 0, one -> 1 (slice 0), one -> 2 (slice 1)...
  np.testing.assert_array_equal(conf, [[6, 1, 1], [0, 2, 0], [0, 1, 0]])
  dice = seg.dice_per_class(conf)
  # c0: 2*6 / (6 + 8) ; c1: 2*2 / (4 + 2) ; c2: 0 / (1 + 1).
  np.testing.assert_allclose(dice, [12 / 14, 4 / 6, 0.0])
  np.testing.assert_allclose(seg.iou_per_class(conf), [6 / 8, 2 / 4, 0.0])
  # A padded row (valid False) counts nowhere.
  conf_row0 = seg.confusion(pred, label, 3, valid=np.array([True, False]))
  np.testing.assert_array_equal(conf_row0, [[1, 1, 0], [0, 2, 0],
                                            [0, 1, 0]])


def test_fb_iou_and_dice3d_by_hand():
  pred, label = _maps()
  # Binary: fg label pixels 3 (slice 0), fg predicted 4 + 1.
  # fg: TP 3, FP 2 -> 3/5; bg: TP 6, FN... bg label 8, bg pred 6 -> 6/8.
  assert seg.fb_iou(pred, label) == pytest.approx((3 / 5 + 6 / 8) / 2)
  # Volumes: both slices in one volume -> 3-D Dice = the pooled Dice;
  # separate volumes: slice 1 has no class 1 in label or prediction -> 1.
  np.testing.assert_allclose(seg.dice_3d(pred, label, np.array([0, 0]), 3),
                             [12 / 14, 4 / 6, 0.0], rtol=1e-6, atol=1e-7)
  per_volume = seg.dice_3d(pred, label, np.array([0, 1]), 3)
  np.testing.assert_allclose(
      per_volume, [(2 / 3 + 10 / 11) / 2, (4 / 6 + 1) / 2, 0.0], rtol=1e-6,
      atol=1e-7)


def test_segmentation_metrics_keys_and_percent():
  pred, label = _maps()
  out = seg.segmentation_metrics(pred, label, 3, volume=np.array([0, 1]))
  assert out["miou"] == pytest.approx(100 * (6 / 8 + 2 / 4 + 0) / 3)
  assert out["dice_fg"] == pytest.approx(100 * (4 / 6 + 0) / 2)
  assert out["pixel_acc"] == pytest.approx(100 * 8 / 11)
  assert out["dice3d_fg"] == pytest.approx(100 * ((4 / 6 + 1) / 2 + 0) / 2)

"""The episodic few-shot evaluator's counting, on hand-made predictions."""

from __future__ import annotations

import numpy as np

from common.data import fewshot_episodes as episodes_lib
from common.eval import fewshot_segmentation as fewshot


def test_miou_sums_per_class_over_episodes_and_fbiou_over_all():
  target = np.array([[[1, 1, 0, 255]], [[1, 0, 0, 0]], [[0, 0, 1, 1]]])
  pred = np.array([[[1, 0, 0, 1]], [[1, 1, 0, 0]], [[0, 0, 1, 1]]], bool)
  inter, union = fewshot.iou_counts(pred, target)
  np.testing.assert_array_equal(inter, [[1, 1], [2, 1], [2, 2]])
  np.testing.assert_array_equal(union, [[2, 2], [3, 2], [2, 2]])
  out = fewshot.summarise(inter, union, np.array([7, 7, 9]))
  # class 7: (1 + 1) / (2 + 2); class 9: 2 / 2. FB: bg 5/7, fg 4/6.
  np.testing.assert_allclose(out["miou"], (0.5 + 1.0) / 2)
  np.testing.assert_allclose(out["fbiou"], (5 / 7 + 4 / 6) / 2)


def test_prototype_solver_on_features_that_are_the_class_code():
  rng = np.random.default_rng(0)
  masks = np.zeros((24, 8, 8), np.uint8)
  for i in range(24):
    masks[i, :4, :4] = 1 + i % 4
  code = rng.normal(size=(256, 16)).astype(np.float32)
  feats = code[masks] + 0.1 * rng.normal(size=masks.shape + (16,))
  cfg = fewshot.default_config()
  cfg.update(novel_classes=(1, 2), shots=(1, 2), episodes=6, chunk=4,
             solvers=("prototype",))
  metrics, examples = fewshot.evaluate_episodes(
      feats.astype(np.float32), masks, cfg, seed=0)
  assert sorted(metrics) == [f"{k}shot/prototype/{m}" for k in (1, 2)
                             for m in ("fbiou", "miou")]
  assert min(metrics.values()) > 0.99, metrics
  assert examples[2]["preds"]["prototype"].shape == (4, 8, 8)
  assert isinstance(examples[1]["episodes"], episodes_lib.Episodes)

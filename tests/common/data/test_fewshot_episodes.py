"""Few-shot folds, base-training masks and episodes (PASCAL-5i rules)."""

from __future__ import annotations

import numpy as np
import pytest

from common.data import fewshot_episodes as fs


def test_folds_match_the_official_splits():
  # src/dataset/classes.py: PASCAL fold 1 novel = 6..10; COCO
  # use_split_coco fold 2 novel = range(3, 80, 4).
  base, novel = fs.fold_classes(20, 4, 1)
  assert novel == (6, 7, 8, 9, 10) and len(base) == 15
  assert set(base) | set(novel) == set(range(1, 21))
  _, novel = fs.fold_classes(80, 4, 2, interleaved=True)
  assert novel == tuple(range(3, 80, 4))
  with pytest.raises(ValueError, match="fold=4"):
    fs.fold_classes(20, 4, 4)
  with pytest.raises(ValueError, match="divide"):
    fs.fold_classes(20, 3, 0)


def _masks(seed=0, n=40, size=8, classes=8):
  rng = np.random.default_rng(seed)
  m = np.zeros((n, size, size), np.uint8)
  for i in range(n):
    for c in rng.choice(np.arange(1, classes + 1), 2, replace=False):
      r, k = rng.integers(0, size - 3, 2)
      m[i, r:r + 3, k:k + 3] = c
  m[:, :, -1] = 255
  return m


def test_base_training_ignores_novel_classes_and_drops_their_images():
  masks = _masks()
  base, novel = fs.fold_classes(8, 4, 0)   # novel 1, 2
  out, keep = fs.base_training_masks(masks, base)
  assert set(np.unique(out)) <= set(range(len(base) + 1)) | {255}
  for c in novel:
    assert np.all(out[masks == c] == 255)
  assert np.all(out[masks == base[2]] == 3)
  has_base = np.isin(masks, base).any((1, 2))
  np.testing.assert_array_equal(keep, has_base)
  bg, _ = fs.base_training_masks(masks, base, novel_label=0)
  assert np.all(bg[masks == novel[0]] == 0)


def test_episodes_are_deterministic_and_valid():
  masks = _masks()
  _, novel = fs.fold_classes(8, 4, 1)
  a = fs.sample_episodes(masks, novel, shots=5, num_episodes=30, seed=3)
  b = fs.sample_episodes(masks, novel, shots=5, num_episodes=30, seed=3)
  c = fs.sample_episodes(masks, novel, shots=5, num_episodes=30, seed=4)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)
  assert not np.array_equal(a.support, c.support)
  for q, sup, cls in zip(*a):
    assert cls in novel and np.any(masks[q] == cls)
    assert q not in sup and len(set(sup)) == 5
    assert all(np.any(masks[s] == cls) for s in sup)
  ms = fs.episode_masks(masks, a.support, a.cls)
  assert ms.shape == (30, 5, 8, 8)
  assert np.all(ms[..., -1] == 255) and set(np.unique(ms)) == {0, 1, 255}
  with pytest.raises(ValueError, match="fewer than shots"):
    fs.sample_episodes(masks[:6], novel, shots=5, num_episodes=3, seed=0)

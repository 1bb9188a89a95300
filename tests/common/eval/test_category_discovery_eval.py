"""Hungarian-matched All / Old / New accuracy against brute force."""

import itertools

import numpy as np

from common.eval import category_discovery as cd


def _brute_force(y_true, y_pred, k):
  """Every permutation of k clusters: (best total, [maps reaching it])."""
  best, maps = -1, []
  for perm in itertools.permutations(range(k)):
    hits = int(np.sum(np.asarray(perm)[y_pred] == y_true))
    if hits > best:
      best, maps = hits, [perm]
    elif hits == best:
      maps.append(perm)
  return best, maps


def test_v2_equals_the_best_permutation_on_small_problems():
  rng = np.random.default_rng(0)
  k = 5
  for trial in range(30):
    y_true = rng.integers(0, k, 40)
    # Predictions: a random relabelling of the truth with 30% noise.
    perm = rng.permutation(k)
    y_pred = np.where(rng.random(40) < 0.3, rng.integers(0, k, 40),
                      perm[y_true])
    is_old = y_true < 2
    best, maps = _brute_force(y_true, y_pred, k)
    all_acc, old, new = cd.split_accuracies(y_true, y_pred, is_old, "v2")
    assert np.isclose(all_acc, best / 40), trial
    if len(maps) == 1:   # a unique optimum fixes the old/new split too
      hit = np.asarray(maps[0])[y_pred] == y_true
      assert np.isclose(old, hit[is_old].mean())
      assert np.isclose(new, hit[~is_old].mean())


def test_v1_matches_each_group_separately_and_v2b_averages_classes():
  y_true = np.array([0, 0, 1, 1, 2, 2, 3, 3])
  # Old clusters swapped, new ones right: v1 forgives each group's own map.
  y_pred = np.array([1, 1, 0, 0, 2, 2, 3, 2])
  is_old = y_true < 2
  all1, old1, new1 = cd.split_accuracies(y_true, y_pred, is_old, "v1")
  assert (old1, new1) == (1.0, 0.75) and np.isclose(all1, 0.875)
  all2, old2, new2 = cd.split_accuracies(y_true, y_pred, is_old, "v2")
  assert (old2, new2, all2) == (1.0, 0.75, 0.875)
  _, _, new_b = cd.split_accuracies(y_true, y_pred, is_old, "v2b")
  assert new_b == 0.75   # classes 2 (1.0) and 3 (0.5) averaged


def test_more_clusters_than_classes_and_report_keys():
  y_true = np.array([0, 0, 1, 1])
  y_pred = np.array([7, 7, 3, 5])   # cluster ids beyond the classes
  assert cd.cluster_accuracy(y_true, y_pred) == 0.75
  out = cd.report(y_true, y_pred, y_true < 1)
  assert out["old_acc"] == 1.0 and out["new_acc"] == 0.5
  assert {"all_acc_v1", "new_acc_v2b"} <= set(out)

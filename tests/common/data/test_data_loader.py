"""Tests of deterministic, resumable, per-host batching."""

import threading

import numpy as np
import pytest

from common.data import loader
from common.data import sources


class _FakeSource:
  """In-memory source whose pixels and labels encode the example index."""

  def __init__(self, n: int, fail_at: int | None = None):
    self.n = n
    self.fail_at = fail_at

  def __len__(self) -> int:
    return self.n

  def get(self, indices: np.ndarray) -> dict[str, np.ndarray]:
    indices = np.asarray(indices)
    if self.fail_at is not None and self.fail_at in indices:
      raise OSError("disk on fire")
    image = np.broadcast_to((indices % 256)[:, None, None, None],
                            (len(indices), 2, 2, 1)).astype(np.uint8)
    return {"image": image, "label": (indices % 10).astype(np.int32)}


def _prefetch_threads() -> int:
  return sum(t.name == "regjax-prefetch" and t.is_alive()
             for t in threading.enumerate())


def test_steps_per_epoch():
  assert loader.steps_per_epoch(42, 8, drop_remainder=True) == 5
  assert loader.steps_per_epoch(42, 8, drop_remainder=False) == 6
  assert loader.steps_per_epoch(40, 8, drop_remainder=False) == 5
  with pytest.raises(ValueError):
    loader.steps_per_epoch(40, 0, drop_remainder=True)


def test_each_epoch_covers_every_example_once():
  epochs = []
  for e in range(3):
    batches = [loader.train_batch_indices(40, 8, seed=3, step=5 * e + i)
               for i in range(5)]
    assert {epoch for _, epoch in batches} == {e}
    order = np.concatenate([idx for idx, _ in batches])
    assert order.dtype == np.int64
    np.testing.assert_array_equal(np.sort(order), np.arange(40))
    np.testing.assert_array_equal(
        order, np.random.default_rng([3, e]).permutation(40))
    epochs.append(order)
  assert not np.array_equal(epochs[0], epochs[1])


def test_remainder_is_dropped_without_repeats():
  seen = np.concatenate(
      [loader.train_batch_indices(42, 8, seed=0, step=s)[0] for s in range(5)])
  assert len(np.unique(seen)) == 40
  assert loader.train_batch_indices(42, 8, seed=0, step=5)[1] == 1


def test_indices_are_pure_in_seed_and_step():
  a, _ = loader.train_batch_indices(100, 10, seed=7, step=23)
  for other_seed in range(3):  # Churn the permutation cache.
    loader.train_batch_indices(100, 10, seed=other_seed, step=99)
  b, _ = loader.train_batch_indices(100, 10, seed=7, step=23)
  np.testing.assert_array_equal(a, b)
  c, _ = loader.train_batch_indices(100, 10, seed=8, step=23)
  assert not np.array_equal(a, c)
  a[:] = -1  # Callers get copies, not the cached permutation.
  np.testing.assert_array_equal(
      loader.train_batch_indices(100, 10, seed=7, step=23)[0], b)


def test_batch_larger_than_dataset():
  with pytest.raises(ValueError, match="larger than the dataset"):
    loader.train_batch_indices(5, 8, seed=0, step=0)


def test_train_batch_contents():
  source = _FakeSource(42)
  with loader.TrainIterator(source, 8, seed=1, process_index=0,
                            process_count=1) as it:
    for step in range(7):
      batch = next(it)
      indices, epoch = loader.train_batch_indices(42, 8, 1, step)
      assert batch["image"].dtype == np.uint8
      assert batch["image"].shape == (8, 2, 2, 1)
      for key, dtype in [("label", np.int32), ("index", np.int32),
                         ("epoch", np.int32), ("mask", np.bool_)]:
        assert batch[key].dtype == dtype and batch[key].shape == (8,), key
      np.testing.assert_array_equal(batch["index"], indices)
      np.testing.assert_array_equal(batch["image"][:, 0, 0, 0], indices)
      np.testing.assert_array_equal(batch["label"], indices % 10)
      assert np.all(batch["epoch"] == epoch) and np.all(batch["mask"])
    assert it.step == 7


def test_resumed_iterator_replays_the_same_batches():
  source = _FakeSource(30)
  with loader.TrainIterator(source, 6, seed=5, process_count=1,
                            process_index=0) as fresh:
    reference = [next(fresh) for _ in range(12)]  # Crosses 2 epochs.
  for k in [1, 5, 7]:
    with loader.TrainIterator(source, 6, seed=5, start_step=k,
                              process_count=1, process_index=0) as resumed:
      assert resumed.step == k
      for expected in reference[k:]:
        got = next(resumed)
        for key in expected:
          np.testing.assert_array_equal(got[key], expected[key], err_msg=key)


def test_host_blocks_concatenate_to_global_batch():
  source = _FakeSource(50)
  whole = loader.train_batch(source, 8, seed=2, step=9)
  parts = [loader.train_batch(source, 8, seed=2, step=9, process_index=p,
                              process_count=2) for p in range(2)]
  for key in whole:
    assert parts[0][key].shape[0] == 4
    np.testing.assert_array_equal(
        np.concatenate([p[key] for p in parts]), whole[key], err_msg=key)
  with pytest.raises(ValueError, match="divisible by the number of proc"):
    loader.TrainIterator(source, 9, seed=0, process_index=0, process_count=2)
  with pytest.raises(ValueError, match="divisible by the number of proc"):
    loader.eval_batches(source, 9, process_index=0, process_count=2)


@pytest.mark.parametrize("n,process_count", [(42, 2), (40, 1), (3, 2)])
def test_eval_covers_each_example_once(n, process_count):
  source = _FakeSource(n)
  per_host = [list(loader.eval_batches(source, 8, process_index=p,
                                       process_count=process_count))
              for p in range(process_count)]
  steps = -(-n // 8)
  assert all(len(batches) == steps for batches in per_host)
  seen = []
  for step in range(steps):
    batch = {k: np.concatenate([h[step][k] for h in per_host])
             for k in per_host[0][step]}
    assert batch["index"].shape == (8,)
    assert np.all(batch["epoch"] == 0)
    np.testing.assert_array_equal(batch["index"][~batch["mask"]], 0)
    np.testing.assert_array_equal(batch["image"][:, 0, 0, 0], batch["index"])
    seen.append(batch["index"][batch["mask"]])
  np.testing.assert_array_equal(np.concatenate(seen), np.arange(n))


def test_errors_reach_the_caller_and_threads_stop():
  before = _prefetch_threads()
  it = loader.TrainIterator(_FakeSource(20, fail_at=3), 20, seed=0,
                            process_index=0, process_count=1)
  with pytest.raises(OSError, match="disk on fire"):
    next(it)
  it.close()
  it = loader.TrainIterator(_FakeSource(20), 4, seed=0, process_index=0,
                            process_count=1)
  next(it)
  it.close()
  with pytest.raises(StopIteration):
    next(it)
  batches = loader.eval_batches(_FakeSource(100), 4, 0, 1)
  next(batches)
  batches.close()  # Abandoning a pass must stop its thread too.
  assert _prefetch_threads() == before


def test_digits_batches(digits_dir):
  source = sources.open_split("digits", "train", digits_dir)
  with loader.TrainIterator(source, 32, seed=0, process_index=0,
                            process_count=1) as it:
    batch = next(it)
  np.testing.assert_array_equal(batch["image"],
                                source.get(batch["index"])["image"])
  assert batch["image"].shape == (32, 8, 8, 1)

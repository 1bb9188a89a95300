"""Deterministic, resumable, per-host batching of random-access sources.

The batch of every training step is a pure function of (seed, step), so a
run restored at step k sees exactly the batches an uninterrupted run would
have seen from step k on. Each host reads only its contiguous block of the
global batch; the blocks concatenated in process order form the global
batch.

Batches are numpy dicts:
  image: uint8 [b, h, w, c]
  label: int32 [b]
  index: int32 [b], position of the example within its split
  epoch: int32 [b], epoch of the step (0 for evaluation)
  mask:  bool [b], False on the padding rows of the last eval batch
where b = global_batch_size // process_count.
"""

from __future__ import annotations

import functools
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

import jax
import numpy as np

__all__ = [
    "Source",
    "TrainIterator",
    "eval_batches",
    "steps_per_epoch",
    "train_batch",
    "train_batch_indices",
]

Batch = dict[str, np.ndarray]


class Source(Protocol):
  """What the loader needs from a dataset (e.g. `sources.ArraySource`)."""

  def __len__(self) -> int:
    ...

  def get(self, indices: np.ndarray) -> Batch:
    """Returns {"image": uint8 [b, h, w, c], "label": int32 [b]}."""
    ...


def steps_per_epoch(
    num_examples: int, global_batch_size: int, drop_remainder: bool
) -> int:
  """Number of batches in one pass over `num_examples` examples."""
  if global_batch_size <= 0:
    raise ValueError(f"global_batch_size must be positive: {global_batch_size}")
  if drop_remainder:
    return num_examples // global_batch_size
  return -(-num_examples // global_batch_size)


@functools.lru_cache(maxsize=2)
def _epoch_permutation(num_examples: int, seed: int, epoch: int) -> np.ndarray:
  # Cached because consecutive steps share the epoch; two entries cover the
  # prefetch thread being one epoch ahead of a caller of the pure function.
  perm = np.random.default_rng([seed, epoch]).permutation(num_examples)
  perm.flags.writeable = False  # Shared between callers.
  return perm


def train_batch_indices(
    num_examples: int, global_batch_size: int, seed: int, step: int
) -> tuple[np.ndarray, int]:
  """Returns the example indices of a training step's global batch.

  Every epoch is a fresh permutation seeded by (seed, epoch); the remainder
  that does not fill a batch is dropped.

  Args:
    num_examples: Size of the training split.
    global_batch_size: Examples per step over all hosts.
    seed: Data-order seed.
    step: Global training step (0-based).

  Returns:
    (indices int64 [global_batch_size], epoch).
  """
  n_steps = steps_per_epoch(num_examples, global_batch_size, True)
  if n_steps == 0:
    raise ValueError(f"global_batch_size {global_batch_size} is larger than "
                     f"the dataset ({num_examples} examples).")
  if step < 0:
    raise ValueError(f"step must be non-negative: {step}")
  epoch, position = divmod(step, n_steps)
  perm = _epoch_permutation(num_examples, seed, epoch)
  start = position * global_batch_size
  return perm[start:start + global_batch_size].astype(np.int64), epoch


def _local_block(
    global_batch_size: int, process_index: int, process_count: int
) -> slice:
  """This host's rows of the global batch."""
  if global_batch_size % process_count:
    raise ValueError(
        f"global_batch_size {global_batch_size} must be divisible by the "
        f"number of processes ({process_count}).")
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index {process_index} not in "
                     f"[0, {process_count}).")
  local = global_batch_size // process_count
  return slice(process_index * local, (process_index + 1) * local)


def _make_batch(
    source: Source, indices: np.ndarray, epoch: int, mask: np.ndarray
) -> Batch:
  batch = dict(source.get(indices))
  batch["index"] = indices.astype(np.int32)
  batch["epoch"] = np.full(len(indices), epoch, np.int32)
  batch["mask"] = mask
  return batch


def train_batch(
    source: Source,
    global_batch_size: int,
    seed: int,
    step: int,
    process_index: int = 0,
    process_count: int = 1,
) -> Batch:
  """Returns this host's part of the global batch of a training step."""
  block = _local_block(global_batch_size, process_index, process_count)
  indices, epoch = train_batch_indices(
      len(source), global_batch_size, seed, step)
  local = indices[block]
  return _make_batch(source, local, epoch, np.ones(len(local), bool))


class _Prefetcher:
  """Runs an iterator in a daemon thread, `depth` items ahead of the caller.

  Reading and host decoding then overlap the device's work on the previous
  step. Exceptions in the thread are re-raised in the caller.
  """

  _DONE = object()

  def __init__(self, items: Iterable[Any], depth: int):
    self._queue: queue.Queue = queue.Queue(maxsize=depth)
    self._stop = threading.Event()
    # The thread must not reference `self`, or an abandoned prefetcher
    # could never be garbage collected.
    self._thread = threading.Thread(
        target=self._produce, args=(items, self._queue, self._stop),
        daemon=True, name="regjax-prefetch")
    self._thread.start()

  @staticmethod
  def _produce(items: Iterable[Any], q: queue.Queue,
               stop: threading.Event) -> None:
    def put(item: Any) -> bool:
      while not stop.is_set():
        try:
          q.put(item, timeout=0.05)  # Timeout so close() is noticed.
          return True
        except queue.Full:
          pass
      return False

    try:
      for item in items:
        if not put(item):
          return
      put(_Prefetcher._DONE)
    except BaseException as e:  # pylint: disable=broad-exception-caught
      put(e)

  def __iter__(self) -> _Prefetcher:
    return self

  def __next__(self) -> Any:
    if self._stop.is_set():
      raise StopIteration
    item = self._queue.get()
    if item is _Prefetcher._DONE:
      self.close()
      raise StopIteration
    if isinstance(item, BaseException):
      self.close()
      raise item
    return item

  def close(self) -> None:
    """Stops the thread; waits for it unless called from it."""
    self._stop.set()
    if self._thread is not threading.current_thread():
      self._thread.join(timeout=10)


class TrainIterator:
  """Endless iterator over this host's part of each training batch.

  Starting at `start_step` yields exactly the batches a fresh iterator yields
  from its `start_step`-th batch on. `step` is the step of the next batch,
  i.e. what to save in a checkpoint.
  """

  def __init__(
      self,
      source: Source,
      global_batch_size: int,
      seed: int,
      start_step: int = 0,
      process_index: int | None = None,
      process_count: int | None = None,
      prefetch: int = 2,
  ):
    """Creates the iterator and starts its prefetch thread.

    Args:
      source: Training split.
      global_batch_size: Examples per step over all hosts.
      seed: Data-order seed.
      start_step: Step of the first batch.
      process_index: This host; defaults to `jax.process_index()`.
      process_count: Number of hosts; defaults to `jax.process_count()`.
      prefetch: Batches read ahead in a background thread; 0 reads inline.
    """
    process_index = (jax.process_index() if process_index is None
                     else process_index)
    process_count = (jax.process_count() if process_count is None
                     else process_count)
    # Fail here, not in the prefetch thread, on a bad configuration.
    _local_block(global_batch_size, process_index, process_count)
    train_batch_indices(len(source), global_batch_size, seed, start_step)
    self.step = start_step
    make = functools.partial(
        train_batch, source, global_batch_size, seed,
        process_index=process_index, process_count=process_count)
    batches = (make(step=s) for s in _count(start_step))
    self._batches = _Prefetcher(batches, prefetch) if prefetch else batches

  def __iter__(self) -> TrainIterator:
    return self

  def __next__(self) -> Batch:
    batch = next(self._batches)
    self.step += 1
    return batch

  def close(self) -> None:
    """Stops the prefetch thread."""
    if isinstance(getattr(self, "_batches", None), _Prefetcher):
      self._batches.close()

  def __enter__(self) -> TrainIterator:
    return self

  def __exit__(self, *exc_info: Any) -> None:
    self.close()

  def __del__(self) -> None:
    try:
      self.close()
    except Exception:  # pylint: disable=broad-except
      pass  # at interpreter exit module globals may already be gone


def _count(start: int) -> Iterator[int]:
  while True:
    yield start
    start += 1


def eval_batches(
    source: Source,
    global_batch_size: int,
    process_index: int | None = None,
    process_count: int | None = None,
    prefetch: int = 2,
) -> Iterator[Batch]:
  """Yields this host's part of a sequential pass over the whole split.

  The last global batch is padded to full size with example 0 and
  `mask=False` on the padding rows, so masked metrics count every example
  exactly once and every step has the same shapes (one compilation).

  Args:
    source: Split to evaluate.
    global_batch_size: Examples per step over all hosts.
    process_index: This host; defaults to `jax.process_index()`.
    process_count: Number of hosts; defaults to `jax.process_count()`.
    prefetch: Batches read ahead in a background thread; 0 reads inline.

  Returns:
    An iterator of batches with `epoch` 0; its `close()` stops the
    prefetch thread of an abandoned pass.
  """
  process_index = (jax.process_index() if process_index is None
                   else process_index)
  process_count = (jax.process_count() if process_count is None
                   else process_count)
  block = _local_block(global_batch_size, process_index, process_count)
  n = len(source)

  def batches() -> Iterator[Batch]:
    for step in range(steps_per_epoch(n, global_batch_size, False)):
      positions = np.arange(step * global_batch_size,
                            (step + 1) * global_batch_size)
      mask = positions < n
      indices = np.where(mask, positions, 0)
      yield _make_batch(source, indices[block], 0, mask[block])

  def prefetched() -> Iterator[Batch]:
    prefetcher = _Prefetcher(batches(), prefetch)
    try:
      yield from prefetcher
    finally:  # Also runs when the caller abandons the generator.
      prefetcher.close()

  # Not a generator itself, so bad arguments fail at the call.
  return prefetched() if prefetch else batches()

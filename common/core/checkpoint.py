"""Orbax checkpoints of the whole `TrainState`, with loud failures.

* Periodic and final saves go to `<workdir>/checkpoints/<step>/`.
* `restore_latest` resumes from the newest step. Before reading any array it
  compares the saved tree (paths, shapes, dtypes) with the state the current
  config builds, and raises `CheckpointError` naming the differences, so a
  changed config never loads into the wrong arrays, and a corrupt or partial
  checkpoint is never silently replaced by a fresh start.
"""

from __future__ import annotations

import os
from typing import Any

from absl import logging
import jax
import numpy as np
import orbax.checkpoint as ocp

from common.core.train_state import TrainState


class CheckpointError(RuntimeError):
  """A checkpoint exists but cannot be used; the message says why."""


def _key_name(entry: Any) -> str:
  for attr in ("key", "name", "idx"):
    if hasattr(entry, attr):
      return str(getattr(entry, attr))
  return str(entry)


def _leaf_signatures(tree: Any) -> dict[str, tuple[tuple[int, ...], str]]:
  """`{"params/conv/kernel": (shape, dtype)}` for every array leaf.

  Paths are spelled the same whether the tree holds dataclasses and named
  tuples (the live state) or the nested dicts orbax's metadata gives back.
  """
  flat, _ = jax.tree_util.tree_flatten_with_path(tree)
  out = {}
  for path, leaf in flat:
    key = "/".join(_key_name(p) for p in path)
    out[key] = (tuple(leaf.shape), str(np.dtype(leaf.dtype)))
  return out


def _describe_mismatch(saved: dict, expected: dict, limit: int = 8) -> str:
  lines = []
  for key in sorted(set(saved) | set(expected)):
    if key not in saved:
      lines.append(f"  missing in checkpoint: {key} {expected[key]}")
    elif key not in expected:
      lines.append(f"  not in current model/method: {key} {saved[key]}")
    elif saved[key] != expected[key]:
      lines.append(f"  {key}: checkpoint {saved[key]} vs current "
                   f"{expected[key]}")
  more = len(lines) - limit
  return "\n".join(lines[:limit] + ([f"  ... {more} more"] if more > 0 else []))


class Checkpointer:
  """Saves and restores `TrainState`s under `<workdir>/checkpoints`."""

  def __init__(self, workdir: str, max_to_keep: int = 2):
    self.directory = os.path.abspath(os.path.join(workdir, "checkpoints"))
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=True,
            # Synchronous: a preempted job must not exit mid-write.
            enable_async_checkpointing=False),
        # Registered up front so metadata can be read before any restore.
        item_handlers=ocp.StandardCheckpointHandler())

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, state: TrainState, force: bool = True) -> None:
    step = int(jax.device_get(state.step))
    if step in self._manager.all_steps():
      return
    self._manager.save(step, args=ocp.args.StandardSave(state), force=force)
    self._manager.wait_until_finished()

  def restore_latest(self, abstract_state: TrainState) -> TrainState | None:
    """Restores the newest checkpoint into `abstract_state`'s structure.

    Args:
      abstract_state: `jax.ShapeDtypeStruct`s with shardings (from
        `jax.eval_shape`) of the state the current config builds.

    Returns:
      The restored state, or None when the workdir has no checkpoint.

    Raises:
      CheckpointError: the checkpoint is unreadable, partial, or does not
        match the current model/method/optimizer.
    """
    step = self.latest_step()
    if step is None:
      leftovers = [d for d in os.listdir(self.directory)
                   if "tmp" in d] if os.path.isdir(self.directory) else []
      if leftovers:
        logging.warning("ignoring unfinished checkpoint writes %s in %s",
                        leftovers, self.directory)
      return None
    where = os.path.join(self.directory, str(step))
    hint = (f"Delete or move {where} to start over from an earlier "
            f"checkpoint, or use a new --workdir.")
    try:
      metadata = self._manager.item_metadata(step)
      saved = _leaf_signatures(_metadata_tree(metadata))
    except Exception as e:  # orbax raises many types for unreadable files
      raise CheckpointError(
          f"checkpoint at {where} (step {step}) cannot be read: "
          f"{type(e).__name__}: {e}. It may be corrupt or incomplete. "
          f"{hint}") from e
    expected = _leaf_signatures(abstract_state)
    if saved != expected:
      raise CheckpointError(
          f"checkpoint at {where} (step {step}) does not match the state "
          f"built by the current config (different model, method, "
          f"optimizer or dataset size?):\n"
          f"{_describe_mismatch(saved, expected)}\n{hint}")
    try:
      restored = self._manager.restore(
          step, args=ocp.args.StandardRestore(abstract_state))
    except Exception as e:
      raise CheckpointError(
          f"checkpoint at {where} (step {step}) is corrupt: could not read "
          f"its arrays ({type(e).__name__}: {e}). {hint}") from e
    logging.info("restored checkpoint %s", where)
    return restored

  def close(self) -> None:
    self._manager.close()


def _metadata_tree(metadata: Any) -> Any:
  """Orbax item metadata -> pytree with `.shape`/`.dtype` leaves."""
  tree = getattr(metadata, "tree", metadata)
  return jax.tree.map(
      lambda m: jax.ShapeDtypeStruct(tuple(m.shape), m.dtype), tree,
      is_leaf=lambda m: hasattr(m, "shape") and hasattr(m, "dtype"))

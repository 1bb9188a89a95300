"""Orbax checkpoints of the whole `TrainState`, verified and never lost.

* Saves go to `<workdir>/checkpoints/<step>/` (synchronous: a preempted job
  must not exit mid-write). Only a state whose every array is finite is
  saved (`NonFiniteStateError` otherwise), so "the last good checkpoint" is
  good. After each save, process 0 writes the SHA-256 of every file of the
  step to `checkpoints/integrity/<step>.json`.
* `restore_latest` verifies the newest step against its checksums, compares
  its saved tree (paths, shapes, dtypes) with the state the current config
  builds, reads it, and checks that every restored array is finite. Any
  failure raises `CheckpointError` naming the file or leaf and what to do;
  with `fallback=True` (the user asked: `regjax train/run
  --fallback_checkpoint`) a corrupt newest step is moved to
  `checkpoints/corrupt/` and the newest older verified one is used instead.
  Nothing ever deletes the last verified checkpoint silently: rotation
  (`max_to_keep`) only removes steps older than a newer verified one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from typing import Any

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from common.core.train_state import TrainState

INTEGRITY = "integrity"
CORRUPT = "corrupt"


class CheckpointError(RuntimeError):
  """A checkpoint exists but cannot be used; the message says why."""


class NonFiniteStateError(FloatingPointError):
  """The state to be saved holds NaN or infinite values."""


def _key_name(entry: Any) -> str:
  for attr in ("key", "name", "idx"):
    if hasattr(entry, attr):
      return str(getattr(entry, attr))
  return str(entry)


def _paths(tree: Any) -> list[tuple[str, Any]]:
  flat, _ = jax.tree_util.tree_flatten_with_path(tree)
  return [("/".join(_key_name(p) for p in path), leaf) for path, leaf in flat]


def _leaf_signatures(tree: Any) -> dict[str, tuple[tuple[int, ...], str]]:
  """`{"params/conv/kernel": (shape, dtype)}` for every array leaf.

  Paths are spelled the same whether the tree holds dataclasses and named
  tuples (the live state) or the nested dicts orbax's metadata gives back.
  """
  return {k: (tuple(leaf.shape), str(np.dtype(leaf.dtype)))
          for k, leaf in _paths(tree)}


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


def _short(error: Exception, limit: int = 300) -> str:
  """The first line of an exception, cut (TensorStore embeds long specs)."""
  text = f"{type(error).__name__}: {error}".strip().splitlines()[0]
  return text if len(text) <= limit else text[:limit] + " ..."


@jax.jit
def _all_finite(tree: Any) -> jax.Array:
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
            if jnp.issubdtype(x.dtype, jnp.inexact)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def non_finite_leaves(tree: Any, limit: int = 5) -> list[str]:
  """Paths of the floating leaves holding NaN or inf (host check)."""
  bad = []
  for key, leaf in _paths(tree):
    leaf = np.asarray(jax.device_get(leaf))
    if np.issubdtype(leaf.dtype, np.inexact) and not np.all(
        np.isfinite(leaf)):
      bad.append(key)
      if len(bad) == limit:
        break
  return bad


def file_digests(folder: str) -> dict[str, str]:
  """`{relative path: sha256}` of every file under `folder`."""
  out = {}
  for root, _, files in os.walk(folder):
    for name in sorted(files):
      path = os.path.join(root, name)
      with open(path, "rb") as f:
        out[os.path.relpath(path, folder)] = hashlib.file_digest(
            f, "sha256").hexdigest()
  return out


class Checkpointer:
  """Saves and restores `TrainState`s under `<workdir>/checkpoints`.

  Args:
    workdir: the run's folder.
    max_to_keep: newest steps kept (>= 1).
    fallback: on a corrupt newest step, use the newest older verified step
      (moving the corrupt one to `checkpoints/corrupt/`) instead of raising;
      default: the environment variable `REGJAX_CHECKPOINT_FALLBACK=1`,
      which `regjax train/run --fallback_checkpoint` sets.
  """

  def __init__(self, workdir: str, max_to_keep: int = 2,
               fallback: bool | None = None):
    if max_to_keep < 1:
      raise ValueError(f"max_to_keep={max_to_keep}: at least 1 checkpoint "
                       "must be kept")
    self.directory = os.path.abspath(os.path.join(workdir, "checkpoints"))
    self.fallback = (os.environ.get("REGJAX_CHECKPOINT_FALLBACK") == "1"
                     if fallback is None else fallback)
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=True,
            enable_async_checkpointing=False),
        # Registered up front so metadata can be read before any restore.
        item_handlers=ocp.StandardCheckpointHandler())

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def _integrity_path(self, step: int) -> str:
    return os.path.join(self.directory, INTEGRITY, f"{step}.json")

  def save(self, state: TrainState, force: bool = True) -> None:
    """Saves `state` (refusing a non-finite one) and its checksums."""
    step = int(jax.device_get(state.step))
    if step in self._manager.all_steps():
      return
    if not bool(_all_finite(state)):
      raise NonFiniteStateError(
          f"the state at step {step} holds non-finite values (first: "
          f"{non_finite_leaves(state)}); not saved, so the last checkpoint "
          f"in {self.directory} stays the last good one")
    self._manager.save(step, args=ocp.args.StandardSave(state), force=force)
    self._manager.wait_until_finished()
    if jax.process_index() == 0:
      os.makedirs(os.path.join(self.directory, INTEGRITY), exist_ok=True)
      digests = file_digests(os.path.join(self.directory, str(step)))
      tmp = self._integrity_path(step) + ".tmp"
      with open(tmp, "w") as f:
        json.dump(digests, f)
      os.replace(tmp, self._integrity_path(step))
      kept = set(self._manager.all_steps())
      for name in os.listdir(os.path.join(self.directory, INTEGRITY)):
        stem = name.split(".")[0]
        if stem.isdigit() and int(stem) not in kept:
          os.remove(os.path.join(self.directory, INTEGRITY, name))

  def verify(self, step: int) -> str | None:
    """None if step's files match their checksums, else what is wrong."""
    path = self._integrity_path(step)
    folder = os.path.join(self.directory, str(step))
    if not os.path.exists(path):
      # Killed after orbax finalised the step and before the checksums:
      # the step is complete (orbax renames it into place atomically).
      logging.warning("checkpoint %s has no checksums; using it unverified",
                      folder)
      return None
    with open(path) as f:
      expected = json.load(f)
    actual = file_digests(folder)
    missing = sorted(set(expected) - set(actual))
    if missing:
      return f"file(s) missing: {missing[:3]}"
    changed = sorted(k for k in expected if actual[k] != expected[k])
    if changed:
      return f"file(s) changed since they were written: {changed[:3]}"
    return None

  def restore_latest(self, abstract_state: TrainState,
                     step: int | None = None) -> TrainState | None:
    """Restores the newest (verified) checkpoint into `abstract_state`.

    Args:
      abstract_state: `jax.ShapeDtypeStruct`s with shardings (from
        `jax.eval_shape`) of the state the current config builds.
      step: restore this saved step (verified the same way, no fallback)
        instead of the newest: the RL protocol resumes its seeds from the
        newest step all of them hold.

    Returns:
      The restored state, or None when the workdir has no checkpoint.

    Raises:
      CheckpointError: the checkpoint is unreadable, corrupt, partial,
        holds non-finite values, or does not match the current
        model/method/optimizer.
    """
    if step is not None:
      return self._restore(step, abstract_state)
    while True:
      step = self.latest_step()
      if step is None:
        if os.path.isdir(self.directory):
          leftovers = [d for d in os.listdir(self.directory) if "tmp" in d]
          if leftovers:
            logging.warning("ignoring unfinished checkpoint writes %s in %s",
                            leftovers, self.directory)
        return None
      try:
        return self._restore(step, abstract_state)
      except CheckpointError as e:
        if not self.fallback or "does not match the state" in str(e):
          raise
        self._quarantine(step, str(e))

  def _quarantine(self, step: int, why: str) -> None:
    if jax.process_index() == 0:
      target = os.path.join(self.directory, CORRUPT, str(step))
      os.makedirs(os.path.dirname(target), exist_ok=True)
      shutil.move(os.path.join(self.directory, str(step)), target)
      if os.path.exists(self._integrity_path(step)):
        os.remove(self._integrity_path(step))
    logging.warning("checkpoint step %d moved to %s (%s); falling back to "
                    "the previous one", step,
                    os.path.join(self.directory, CORRUPT), why)
    self._manager.reload()

  def _restore(self, step: int, abstract_state: TrainState) -> TrainState:
    where = os.path.join(self.directory, str(step))
    hint = (f"Rerun with --fallback_checkpoint to move it aside and resume "
            f"from the previous verified checkpoint, delete {where} "
            f"yourself, or use a new --workdir.")
    problem = self.verify(step)
    if problem:
      raise CheckpointError(f"checkpoint at {where} (step {step}) is "
                            f"corrupt: {problem}. {hint}")
    try:
      metadata = self._manager.item_metadata(step)
      saved = _leaf_signatures(_metadata_tree(metadata))
    except Exception as e:  # orbax raises many types for unreadable files
      raise CheckpointError(
          f"checkpoint at {where} (step {step}) cannot be read: "
          f"{_short(e)}. It may be corrupt or incomplete. {hint}") from e
    expected = _leaf_signatures(abstract_state)
    if saved != expected:
      raise CheckpointError(
          f"checkpoint at {where} (step {step}) does not match the state "
          f"built by the current config (different model, method, "
          f"optimizer or dataset size?):\n"
          f"{_describe_mismatch(saved, expected)}\nUse a new --workdir, or "
          "the config that wrote it.")
    try:
      restored = self._manager.restore(
          step, args=ocp.args.StandardRestore(abstract_state))
    except Exception as e:
      raise CheckpointError(
          f"checkpoint at {where} (step {step}) is corrupt: could not read "
          f"its arrays ({_short(e)}). {hint}") from e
    if not bool(_all_finite(restored)):
      raise CheckpointError(
          f"checkpoint at {where} (step {step}) holds non-finite values "
          f"({non_finite_leaves(restored)}). {hint}")
    logging.info("restored checkpoint %s", where)
    return restored

  def close(self) -> None:
    self._manager.close()


def _metadata_tree(metadata: Any) -> Any:
  """Orbax item metadata -> pytree with `.shape`/`.dtype` leaves."""
  tree = getattr(metadata, "tree", metadata)
  if tree is None:
    raise CheckpointError("the checkpoint has no tree metadata (_METADATA "
                          "missing)")
  return jax.tree.map(
      lambda m: jax.ShapeDtypeStruct(tuple(m.shape), m.dtype), tree,
      is_leaf=lambda m: hasattr(m, "shape") and hasattr(m, "dtype"))

"""The host loop: build, resume, train, evaluate, log, checkpoint.

`train(config, workdir)` runs one configuration end to end:

* builds data, model, method and optimizer from the config, and the one
  jitted train step (`common.train_step`);
* resumes from the newest checkpoint in `workdir` if there is one (a
  checkpoint that cannot be used raises, never a silent fresh start);
* logs one step late (fetching step t's metrics while step t+1 runs, so the
  host never waits on the device) and aborts on a non-finite metric with the
  step and the metric's name;
* evaluates every `train.eval_every_epochs` epochs and at the end;
* checkpoints every `train.checkpoint_every_steps`, at the end, and when the
  process receives SIGTERM (TPU preemption), then returns cleanly.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import threading
import time
from typing import Any, Callable, Sequence

from absl import logging
import jax
import ml_collections as mlc
import numpy as np
import tqdm

from common import checkpoint as checkpoint_lib
from common import harness
from common import logging_utils
from common import sharding as sharding_lib
from common.data import loader as loader_lib

# Re-exported: tests and notebooks build the harness through the loop module.
setup = harness.setup
build_hparams = harness.build_hparams


class NonFiniteError(FloatingPointError):
  """A training metric became NaN or infinite."""


@dataclasses.dataclass
class RunResult:
  status: str                       # "finished" or "preempted"
  workdir: str
  steps: int
  final_eval: dict[str, float]
  eval_history: list[dict[str, Any]]
  seconds: float


def _check_finite(step: int, metrics: dict[str, np.ndarray],
                  checkpoint_dir: str, last_saved: int | None) -> None:
  bad = [k for k, v in metrics.items() if not np.all(np.isfinite(v))]
  if bad:
    name = "loss" if "loss" in bad else bad[0]
    raise NonFiniteError(
        f"non-finite training metric {name!r} = {metrics[name]} at step "
        f"{step} (all non-finite: {bad}). Last good checkpoint: "
        f"{'none' if last_saved is None else f'step {last_saved}'} in "
        f"{checkpoint_dir}. Lower the learning rate or check the data.")


def _truncate_log(path: str, last_step: int) -> None:
  """Drops records past the resumed step, left by the interrupted run."""
  if not os.path.exists(path):
    return
  kept = [r for r in logging_utils.read_jsonl(path) if r["step"] <= last_step]
  with open(path, "w", encoding="utf-8") as f:
    f.writelines(json.dumps(r) + "\n" for r in kept)


# Keys that may change between a run and its resumption.
_RESUME_MAY_CHANGE = ("train.log_every_steps", "train.checkpoint_every_steps",
                      "train.keep_checkpoints", "train.tensorboard",
                      "train.log_norms",
                      "train.eval_batch_size", "data.data_dir", "study.",
                      "smoke.")


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out


def _check_same_config(workdir: str, config: mlc.ConfigDict) -> None:
  """Refuses to resume a run whose config differs from the current one."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    return
  with open(path) as f:
    saved = _flatten(json.load(f))
  current = _flatten(json.loads(config.to_json()))
  diff = [k for k in sorted(set(saved) | set(current))
          if saved.get(k) != current.get(k)
          and not k.startswith(_RESUME_MAY_CHANGE)]
  if diff:
    lines = [f"  {k}: saved {saved.get(k)!r}, now {current.get(k)!r}"
             for k in diff[:10]]
    raise checkpoint_lib.CheckpointError(
        f"{workdir} holds a checkpoint of a different config; resuming "
        f"would mix two runs:\n" + "\n".join(lines)
        + "\nUse a new --workdir, or rerun with the saved values.")


class _Preemption:
  """Turns SIGTERM into a flag the loop checks between steps."""

  def __init__(self):
    self.requested = False
    self._previous = None

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    return self

  def _handle(self, signum, frame):
    del signum, frame
    self.requested = True

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)


def train(config: mlc.ConfigDict, workdir: str, *,
          hooks: Sequence[Callable[[int], None]] = (),
          method: Any = None,
          show_progress: bool = True, desc: str = "") -> RunResult:
  """Trains `config` in `workdir` (resuming if it holds a checkpoint).

  Args:
    config: a locked experiment config.
    workdir: output folder (metrics.jsonl, tensorboard/, checkpoints/,
      summary.json).
    hooks: called with the number of finished steps after each step.
    method: a `common.method.Method` replacing the registered one (forks).
    show_progress: show a tqdm bar with ETA and images/s.
    desc: progress-bar label.

  Returns:
    The run's final evaluation, its eval history, and whether it finished.
  """
  t_start = time.time()
  s = harness.setup(config, method=method)
  os.makedirs(workdir, exist_ok=True)
  ckpt = checkpoint_lib.Checkpointer(workdir, config.train.keep_checkpoints)
  if ckpt.latest_step() is not None:
    _check_same_config(workdir, config)
  state = ckpt.restore_latest(s.abstract_state)
  log_path = os.path.join(workdir, "metrics.jsonl")
  if state is None:
    state = s.init_state()
    if jax.process_index() == 0:
      if os.path.exists(log_path):
        os.remove(log_path)
      with open(os.path.join(workdir, "config.json"), "w") as f:
        f.write(config.to_json(indent=2))
  elif jax.process_index() == 0:
    _truncate_log(log_path, int(jax.device_get(state.step)))
  start = int(jax.device_get(state.step))
  total, spe = s.run.total_steps, s.run.steps_per_epoch
  writer = logging_utils.MetricWriter(workdir, config.train.tensorboard)
  eval_history = [r for r in (logging_utils.read_jsonl(log_path)
                              if os.path.exists(log_path) else [])
                  if r["split"] == "eval"]
  every_eval = config.train.eval_every_epochs * spe
  last_saved = ckpt.latest_step()
  batch_size = config.train.batch_size
  bar = tqdm.tqdm(total=total, initial=start, desc=desc or config.experiment,
                  unit="step", disable=not show_progress, dynamic_ncols=True,
                  smoothing=0.1)
  pending = None
  window = (start, time.time())
  status = "finished"

  def drain():
    """Fetches, checks and logs the previous step's metrics."""
    nonlocal pending, window
    if pending is None:
      return
    done, metrics = pending
    pending = None
    metrics = jax.device_get(metrics)
    _check_finite(done, metrics, ckpt.directory, last_saved)
    if done % config.train.log_every_steps == 0 or done == total:
      now = time.time()
      rate = (done - window[0]) * batch_size / max(now - window[1], 1e-9)
      window = (done, now)
      writer.write(done, "train", {**metrics, "images_per_sec": rate})
      bar.set_postfix(loss=f"{float(metrics['loss']):.4f}",
                      img_s=f"{rate:,.0f}", refresh=False)

  def run_eval(done):
    result = harness.evaluate(s, state)
    record = {"epoch": done / spe, **result}
    writer.write(done, "eval", record)
    eval_history.append({"step": done, "split": "eval", **record})
    return result

  iterator = loader_lib.TrainIterator(s.train_source, batch_size,
                                      seed=config.seed, start_step=start)
  try:
    with _Preemption() as preemption:
      for step in range(start, total):
        batch = sharding_lib.shard_batch(next(iterator), s.mesh)
        state, metrics = s.train_step(state, batch, s.hparams)
        drain()
        pending = (step + 1, metrics)
        bar.update(1)
        for hook in hooks:
          hook(step + 1)
        done = step + 1
        if every_eval and done % every_eval == 0 and done != total:
          drain()
          run_eval(done)
        if done % config.train.checkpoint_every_steps == 0:
          drain()
          ckpt.save(state)
          last_saved = done
        if preemption.requested:
          drain()
          ckpt.save(state)
          status = "preempted"
          logging.warning("SIGTERM: saved step %d to %s; exiting", done,
                          ckpt.directory)
          break
      drain()
    final_eval = {}
    if status == "finished":
      final_eval = (run_eval(total) if start < total or not eval_history
                    else {k: v for k, v in eval_history[-1].items()
                          if k not in ("step", "split", "epoch")})
      ckpt.save(state)
  finally:
    bar.close()
    iterator.close()
    writer.close()
    ckpt.close()
  result = RunResult(status=status, workdir=workdir,
                     steps=int(jax.device_get(state.step)),
                     final_eval=final_eval, eval_history=eval_history,
                     seconds=time.time() - t_start)
  # A rerun of a finished run trains nothing: keep its original summary.
  if status == "finished" and start < total and jax.process_index() == 0:
    with open(os.path.join(workdir, "summary.json"), "w") as f:
      json.dump({"steps": result.steps, "final_eval": final_eval,
                 "seconds": result.seconds}, f, indent=2)
  return result

"""The continual_gcd protocol: stages trained one after another, no replay.

Continual generalized category discovery (Happy, arXiv:2410.06535; the
setting of its Fig. 1): stage 0 trains on labelled data of the old
classes; every later stage trains on *unlabelled* data that mixes old
classes with classes never seen before, starting from the model the
previous stage ended with and never seeing earlier stages' data again.

A run of this protocol, with `continual.stages` one tuple of "key=value"
overrides per stage (of the supervised sections; e.g. which classes and
which examples a stage's data holds, the method and its numbers, the
number of steps):

1. stage 0 trains its config with the supervised loop in
   `<workdir>/stage_0`;
2. stage s >= 1 restores stage s-1's final state and hands the method's
   `init` (as `ctx.extras`) the *transition* of the boundary:

     prev:       {"params", "model_state", "method_state"} of stage s-1
                 (a frozen previous model, carried prototypes, masks);
     prev_data:  stage s-1's model on stage s-1's training split
                 (un-augmented, in order): {"features" [n, d],
                 "logits" [n, C], "mask" [n], and the split's other
                 non-input keys ("label", "labelled", ...)};
     data:       the same model on stage s's training split;
     stage:      s.

   Stage s then trains in `<workdir>/stage_<s>` from stage s-1's params
   and model state with a fresh optimizer (the method's `init` may replace
   them: new classifier heads). The transition is written to
   `<workdir>/stage_<s>/transition.msgpack` before training, so a stage
   resumed after preemption rebuilds exactly the state shapes and values
   it started with (its checkpoint holds the rest: bit-exact resume).

Every stage keeps the model's full class count (the method masks classes
not active yet), so parameters carry over without reshaping.

Final metrics: each stage's final evaluation as `stage<s>/<name>` (a
category-discovery evaluator reports All / Old / New there), plus the
last stage's as `final/<name>`.
"""

from __future__ import annotations

import os
import time
from typing import Any

from flax import serialization
import jax
import ml_collections as mlc
import numpy as np

from common import config as config_lib
from common.core import sharding as sharding_lib
from common.data import loader as loader_lib
from common.protocols import Protocol
from common.protocols import RunResult
from common.protocols import build
from common.protocols import finetune
from common.protocols import register_protocol
from common.protocols import runs
from common.protocols import supervised

TRANSITION = "transition.msgpack"


def base_config() -> mlc.ConfigDict:
  """The supervised schema plus the `continual` section."""
  c = supervised.base_config()
  c.protocol = "continual_gcd"
  c.continual = mlc.ConfigDict(dict(
      # One tuple of "key=value" overrides of the supervised sections per
      # stage, stage 0 first.
      stages=(),
      # What the transition carries of each split (besides the outputs):
      # the batch keys kept with the features (the input is never kept).
      keep_keys=("label", "labelled", "is_old", "mask")))
  return c


def stage_config(config: mlc.ConfigDict, stage: int) -> mlc.ConfigDict:
  """The supervised config of `stage` (its overrides applied)."""
  stages = tuple(config.continual.stages)
  if not 0 <= stage < len(stages):
    raise config_lib.ConfigError(
        f"stage {stage} of config.continual.stages: allowed 0.."
        f"{len(stages) - 1}")
  return finetune.sections_config(
      config, stages[stage], f"{config.experiment}_stage{stage}",
      f"config.continual.stages[{stage}]")


def validate(config: mlc.ConfigDict) -> None:
  supervised.validate(config)
  stages = config.continual.stages
  if not stages or isinstance(stages, str) or not all(
      isinstance(s, (tuple, list)) for s in stages):
    raise config_lib.ConfigError(
        f"config.continual.stages={stages!r}: expected a non-empty tuple of "
        "tuples of 'key=value' overrides, one per stage")
  for s in range(len(stages)):
    supervised.validate(stage_config(config, s))


def split_outputs(s: build.Setup, state: Any, source: Any,
                  keep_keys: tuple[str, ...]) -> dict[str, np.ndarray]:
  """`state`'s eval-mode features and logits on every example of `source`
  in order (`Method.predict`; no augmentation), with the kept batch keys;
  padding rows dropped."""
  out: dict[str, list[np.ndarray]] = {}
  for local in loader_lib.eval_batches(source, s.config.train.eval_batch_size,
                                       jax.process_index(),
                                       jax.process_count()):
    batch = sharding_lib.shard_batch(local, s.mesh)
    pred = s.eval_step(state, batch, s.hparams,
                       output_keys=("features", "logits"))
    rows = {**pred, **{k: batch[k] for k in keep_keys if k in batch}}
    for k, v in rows.items():
      out.setdefault(k, []).append(sharding_lib.gather_to_host(v))
  arrays = {k: np.concatenate(v) for k, v in out.items()}
  keep = arrays.pop("mask", None)
  if keep is not None:
    arrays = {k: v[keep.astype(bool)] for k, v in arrays.items()}
  arrays["mask"] = np.ones(len(arrays["logits"]), bool)
  return arrays


def transition(prev_setup: build.Setup, prev_state: Any,
               cur_setup_source: Any, keep_keys: tuple[str, ...],
               stage: int) -> dict[str, Any]:
  """The extras stage `stage` starts from (see the module docstring)."""
  host = lambda tree: jax.tree.map(np.asarray,
                                   jax.tree.map(sharding_lib.gather_to_host,
                                                tree))
  return {
      "prev": {"params": host(prev_state.params),
               "model_state": host(prev_state.model_state),
               "method_state": host(prev_state.method_state)},
      "prev_data": split_outputs(prev_setup, prev_state,
                                 prev_setup.train_source, keep_keys),
      "data": split_outputs(prev_setup, prev_state, cur_setup_source,
                            keep_keys),
      "stage": np.asarray(stage, np.int32)}


def _load(path: str) -> dict[str, Any]:
  with open(path, "rb") as f:
    return serialization.msgpack_restore(f.read())


def _save(path: str, tree: dict[str, Any]) -> None:
  if jax.process_index() == 0:
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
      f.write(serialization.msgpack_serialize(tree))
    os.replace(tmp, path)


def stage_extras(config: mlc.ConfigDict, workdir: str, stage: int
                  ) -> dict[str, Any] | None:
  """Stage `stage`'s transition: read back if written, else built from
  stage `stage - 1`'s final checkpoint (which must be finished)."""
  if stage == 0:
    return None
  path = os.path.join(workdir, f"stage_{stage}", TRANSITION)
  if os.path.exists(path):
    return _load(path)
  prev_cfg = stage_config(config, stage - 1)
  prev_dir = os.path.join(workdir, f"stage_{stage - 1}")
  prev_setup, prev_state = supervised.restore(
      prev_cfg, prev_dir, extras=stage_extras(config, workdir, stage - 1))
  cur_source, *_ = build.open_data(stage_config(config, stage))
  extras = transition(prev_setup, prev_state, cur_source,
                      tuple(config.continual.keep_keys), stage)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  _save(path, extras)
  return _load(path)   # the same values a resumed stage will read


def run(config: mlc.ConfigDict, workdir: str, show_progress: bool = True,
        desc: str = "") -> RunResult:
  """Trains the stages in turn; see the module docstring."""
  t_start = time.time()
  cached = runs.begin(config, workdir, validate)
  if cached is not None:
    return cached
  final: dict[str, float] = {}
  history: list[dict[str, Any]] = []
  steps = 0
  for stage in range(len(config.continual.stages)):
    cfg = stage_config(config, stage)
    folder = os.path.join(workdir, f"stage_{stage}")
    done = runs.cached_result(folder, cfg)
    if done is None:
      extras = stage_extras(config, workdir, stage)
      initial = None
      if extras is not None:
        initial = (extras["prev"]["params"], extras["prev"]["model_state"])
      done = supervised.train(
          cfg, folder, show_progress=show_progress, initial=initial,
          extras=extras, desc=f"{desc or config.experiment} stage {stage}")
    steps += done.steps
    if done.status != "finished":
      return RunResult(status=done.status, workdir=workdir, steps=steps,
                       final={}, history=[], seconds=time.time() - t_start)
    final.update({f"stage{stage}/{k}": v for k, v in done.final.items()})
    history += [{**r, "stage": stage} for r in done.history]
  final.update({f"final/{k}": v for k, v in done.final.items()})
  runs.write_config(workdir, config)
  result = RunResult(status="finished", workdir=workdir, steps=steps,
                     final=final, history=history,
                     seconds=time.time() - t_start)
  runs.write_summary(workdir, config, result)
  return result


def smoke(config: mlc.ConfigDict, workdir: str) -> None:
  """`smoke.steps` steps of stages 0 and 1 (one stage boundary: every
  code path), each ending with its evaluation."""
  steps = config.smoke.steps
  stages = tuple(tuple(s) + (f"train.steps={steps}",
                             "train.eval_every_epochs=0",
                             "train.tensorboard=False")
                 for s in config.continual.stages[:2])
  config = config_lib.apply_overrides(config, {
      "train.steps": steps, "train.tensorboard": False,
      "train.eval_every_epochs": 0, "continual.stages": stages})
  result = run(config, workdir, show_progress=False)
  want = steps * len(stages)
  runs.check_smoke(result, want)


@register_protocol("continual_gcd")
def protocol() -> Protocol:
  return Protocol(name="continual_gcd", base_config=base_config,
                  validate=validate, run=run, smoke=smoke)

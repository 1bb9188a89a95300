"""The staged protocol: pretrain, run an intermediate stage, then this run.

Papers that edit a pretrained model in several stages (Adapt-then-Unlearn:
adapt the pretrained GAN to negative samples, then unlearn from the
pretrained GAN while being repelled from the adapted one) extend the
`finetune` protocol. A run

1. trains (or reuses) the pretraining run exactly as `finetune` does
   (`pretrain.overrides`, shared by every arm of a seed whose pretraining
   config is the same);
2. runs the intermediate stage `stage.copies` times: this config with
   `stage.overrides` and `<stage.index_key>=i` (copy i: another draw of the
   stage's data), each starting from the pretrained parameters and model
   state; the copies live in `<study>/stage/<fingerprint>/seed_<k>` (shared
   across arms like the pretraining run), else `<workdir>/stage_<i>`;
3. trains this config in `<workdir>/finetune` from the pretrained
   parameters and model state.

Stages 2 and 3 hand their method's `init` (`ctx.extras`):
`{"previous_method_state": <the pretraining run's final method state>,
"stage_params": [<copy i's final parameters>]}` (the list is empty in the
intermediate runs themselves and with `stage.copies = 0`). Every stage's
optimizer starts fresh; what continues (a discriminator) is the method's
choice through `previous_method_state`.

Final metrics: `finetuned/<m>`, `pretrained/<m>` and `stage/<m>` (copy 0's
final evaluation). Resuming, caching and SIGTERM work per stage as in
`finetune`.
"""

from __future__ import annotations

import os
import time
from typing import Any

import ml_collections as mlc

from common import config as config_lib
from common.protocols import Protocol
from common.protocols import RunResult
from common.protocols import finetune
from common.protocols import register_protocol
from common.protocols import runs
from common.protocols import supervised



def base_config() -> mlc.ConfigDict:
  """The finetune schema plus the `stage` section."""
  c = finetune.base_config()
  c.protocol = "staged"
  c.stage = mlc.ConfigDict(dict(
      overrides=(),        # "key=value" overrides of the supervised sections
      copies=1,            # intermediate runs (0: none)
      index_key=""))       # set to 0..copies-1 in copy i ("" = none)
  # The smoke's extra "key=value" overrides of every stage (smaller banks
  # and evaluations; `smoke.` keys are outside the fingerprint).
  c.smoke.overrides = ()
  return c


def stage_config(config: mlc.ConfigDict, index: int) -> mlc.ConfigDict:
  """The supervised config of intermediate copy `index`."""
  texts = list(config.stage.overrides)
  if config.stage.index_key:
    texts.append(f"{config.stage.index_key}={index}")
  return finetune.sections_config(config, texts,
                                  f"{config.experiment}_stage",
                                  "config.stage")


def stage_dir(config: mlc.ConfigDict, workdir: str, index: int) -> str:
  tag = config_lib.fingerprint(stage_config(config, index))[:12]
  return finetune.shared_run_dir(workdir, tag, config.seed,
                                 f"stage_{index}", kind="stage")


def validate(config: mlc.ConfigDict) -> None:
  finetune.validate(config)
  if config.stage.copies < 0:
    raise config_lib.ConfigError(
        f"config.stage.copies={config.stage.copies}; allowed >= 0")
  for i in range(min(config.stage.copies, 1)):
    supervised.validate(stage_config(config, i))


def _stopped(status: str, workdir: str, steps: int, t0: float) -> RunResult:
  return RunResult(status=status, workdir=workdir, steps=steps, final={},
                   history=[], seconds=time.time() - t0)


def run(config: mlc.ConfigDict, workdir: str, show_progress: bool = True,
        desc: str = "") -> RunResult:
  """Pretraining, the intermediate copies, then this run (module doc)."""
  t0 = time.time()
  cached = runs.begin(config, workdir, validate)
  if cached is not None:
    return cached
  desc = desc or config.experiment
  pre_cfg = finetune.pretrain_config(config)
  pre_dir = finetune.pretrain_dir(config, workdir)
  pre = supervised.train(pre_cfg, pre_dir, show_progress=show_progress,
                         desc=f"{desc} pretrain")
  if pre.status != "finished":
    return _stopped(pre.status, workdir, 0, t0)
  _, pre_state = supervised.restore(pre_cfg, pre_dir)
  initial = (pre_state.params, pre_state.model_state)
  handed: dict[str, Any] = {"previous_method_state": pre_state.method_state,
                            "stage_params": []}
  stage_final: dict[str, float] = {}
  for i in range(config.stage.copies):
    cfg_i, dir_i = stage_config(config, i), stage_dir(config, workdir, i)
    extras_i = {**handed, "stage_params": []}
    res = supervised.train(cfg_i, dir_i, show_progress=show_progress,
                           desc=f"{desc} stage {i}", initial=initial,
                           extras=extras_i)
    if res.status != "finished":
      return _stopped(res.status, workdir, 0, t0)
    stage_final = stage_final or res.final
    _, state_i = supervised.restore(cfg_i, dir_i, extras=extras_i)
    handed["stage_params"].append(state_i.params)
  tune_dir = os.path.join(workdir, "finetune")
  tuned = supervised.train(config, tune_dir, show_progress=show_progress,
                           desc=desc, initial=initial, extras=handed)
  if tuned.status != "finished":
    return _stopped(tuned.status, workdir, tuned.steps, t0)
  runs.write_config(workdir, config)
  final = {**{f"finetuned/{k}": v for k, v in tuned.final.items()},
           **{f"pretrained/{k}": v for k, v in pre.final.items()},
           **{f"stage/{k}": v for k, v in stage_final.items()}}
  return RunResult(status="finished", workdir=workdir, steps=tuned.steps,
                   final=final, history=tuned.history,
                   seconds=time.time() - t0)


def restore_stages(config: mlc.ConfigDict, workdir: str) -> dict[str, Any]:
  """The finished stages of `config`'s run in `workdir` as `(setup, state)`
  pairs: `{"pretrained": ..., "stage": [copy 0, ...], "finetuned": ...}`
  (figures; each restored with the extras it was trained with)."""
  pre_cfg = finetune.pretrain_config(config)
  pre = supervised.restore(pre_cfg, finetune.pretrain_dir(config, workdir))
  handed = {"previous_method_state": pre[1].method_state, "stage_params": []}
  copies = []
  for i in range(config.stage.copies):
    copies.append(supervised.restore(
        stage_config(config, i), stage_dir(config, workdir, i),
        extras={**handed, "stage_params": []}))
    handed["stage_params"].append(copies[-1][1].params)
  tuned = supervised.restore(config, os.path.join(workdir, "finetune"),
                             extras=handed)
  return {"pretrained": pre, "stage": copies, "finetuned": tuned}


def smoke(config: mlc.ConfigDict, workdir: str) -> None:
  """`smoke.steps` steps of every stage, one intermediate copy (the others
  differ only in `stage.index_key`), `smoke.overrides` applied to every
  stage; only the last run evaluates."""
  steps = config.smoke.steps
  extra = tuple(config.smoke.overrides)
  short = (f"train.steps={steps}", "eval.name=none") + extra
  config = config_lib.apply_overrides(config, {
      **dict(config_lib.parse_override(text) for text in extra),
      "train.steps": steps, "train.tensorboard": False,
      "train.eval_every_epochs": 0,
      "stage.copies": min(config.stage.copies, 1),
      "pretrain.overrides": tuple(config.pretrain.overrides) + short,
      "stage.overrides": tuple(config.stage.overrides) + short})
  result = run(config, workdir, show_progress=False)
  runs.check_smoke(result, steps)


@register_protocol("staged")
def protocol() -> Protocol:
  return Protocol(name="staged", base_config=base_config, validate=validate,
                  run=run, smoke=smoke)

"""The finetune protocol: pretrain (or reuse) a model, then fine-tune it.

Papers that change what happens *after* pretraining (hyperfitting: fine-tune
a pretrained LM to near-zero loss on a tiny set; adapters on a pretrained
model) need "start from the params of another run". A run of this protocol

1. builds the pretraining config: the supervised sections of this config
   (`data`, `model`, `method`, `optim`, `schedule`, `train`, `eval`) with
   `pretrain.overrides` applied ("key=value" strings, e.g.
   `"train.steps=2000"`), and trains it with the supervised loop in
   `pretrain.dir`, else `<study>/pretrained/<fingerprint>/seed_<k>` for a
   study's `<study>/<arm>/seed_<k>` workdir (else `<workdir>/pretrained`).
   Every arm of a seed whose pretraining config is the same shares that
   run (the folder is named by the config's fingerprint, so arms that
   pretrain differently never collide); it resumes, and a finished one is
   read back from its summary;
2. trains this config with the supervised loop in `<workdir>/finetune`
   (resumable like any supervised run), starting from
   the pretrained run's final parameters and model state (a fresh
   optimizer; the method's `init` sees them as `ctx.params`).

With `pretrain.hf_checkpoint` (a Llama/Qwen2 `save_pretrained` directory)
step 1 is replaced by loading that checkpoint
(`common.convert.hf_checkpoint`): nothing is pretrained, the fine-tuning
run starts from its parameters (adapters on Llama-2-7B: sorsa), and the
final metrics hold `finetuned/<name>` only.

The final metrics are the fine-tuned run's final evaluation as
`finetuned/<name>` and the pretrained run's as `pretrained/<name>` (the
same evaluator, so before and after sit in one row; a finished run is
served from the two runs' summaries without restoring anything). SIGTERM during either stage saves and returns
"preempted"; rerunning resumes the stage it stopped in.
"""

from __future__ import annotations

import ast
import os
import re
import time
from typing import Any

import ml_collections as mlc

from common import config as config_lib
from common.convert import hf_checkpoint
from common.protocols import Protocol
from common.protocols import RunResult
from common.protocols import register_protocol
from common.protocols import runs
from common.protocols import supervised

_SECTIONS = ("data", "model", "method", "optim", "schedule", "train", "eval")


def base_config() -> mlc.ConfigDict:
  """The supervised schema plus the `pretrain` section."""
  c = supervised.base_config()
  c.protocol = "finetune"
  c.pretrain = mlc.ConfigDict(dict(
      # "key=value" overrides of the supervised sections for pretraining.
      overrides=(),
      dir=""))              # "" = <study>/pretrained/<fingerprint>/seed_k
  # Optional key (absent by default, so no existing fingerprint changes):
  # `pretrain.hf_checkpoint`, a HF checkpoint directory replacing step 1.
  return c


def sections_config(config: mlc.ConfigDict, overrides, experiment: str,
                    where: str) -> mlc.ConfigDict:
  """A supervised config from `config`'s supervised sections and seed with
  "key=value" `overrides` (of those sections only; `where` names them in
  errors), named `experiment`. A dict literal replaces a whole sub-section
  (`"model.kwargs={'hidden_sizes': (64,)}"`: another model's arguments)."""
  c = supervised.base_config()
  c.experiment = experiment
  for section in _SECTIONS:
    setattr(c, section, config[section].copy_and_resolve_references())
  c.seed = config.seed
  c.lock()
  parsed = {}
  for text in overrides:
    key, value = config_lib.parse_override(text)
    if key.split(".")[0] not in _SECTIONS:
      raise config_lib.ConfigError(
          f"{where}: {text!r} sets {key!r}; allowed: keys of the sections "
          f"{_SECTIONS}")
    parsed[key] = _section_value(c, key, value)
  return config_lib.apply_overrides(c, parsed)


def _section_value(config: mlc.ConfigDict, key: str, raw: str) -> Any:
  """`raw` as a dict when `key` names a sub-section, else `raw`."""
  node = config
  for part in key.split("."):
    if not isinstance(node, mlc.ConfigDict) or part not in node:
      return raw               # apply_overrides names the unknown key
    node = node[part]
  if not isinstance(node, mlc.ConfigDict):
    return raw
  try:
    value = ast.literal_eval(raw)
  except (ValueError, SyntaxError):
    value = None
  if not isinstance(value, dict):
    raise config_lib.ConfigError(
        f"config key {key!r} is a section; give a dict literal such as "
        f"{key}={{'name': value}}, got {raw!r}")
  return value


def pretrain_config(config: mlc.ConfigDict) -> mlc.ConfigDict:
  """The supervised config of the pretraining run of `config.seed`."""
  return sections_config(config, config.pretrain.overrides,
                         f"{config.experiment}_pretrain",
                         "config.pretrain.overrides")


def pretrain_dir(config: mlc.ConfigDict, workdir: str) -> str:
  """Where the pretraining run of `config` lives (see the module doc)."""
  if config.pretrain.dir:
    return config.pretrain.dir
  tag = config_lib.fingerprint(pretrain_config(config))[:12]
  return shared_run_dir(workdir, tag, config.seed, "pretrained")


def shared_run_dir(workdir: str, name: str, seed: int, alone: str,
                   kind: str = "pretrained") -> str:
  """`<study>/<kind>/<name>/seed_<seed>` for a study's
  `<study>/<arm>/seed_<k>` workdir (shared by its arms), else
  `<workdir>/<alone>`: where a run derived from this one (its pretraining,
  a teacher, a probed model) lives."""
  workdir = os.path.abspath(workdir)
  if re.fullmatch(r"seed_\d+", os.path.basename(workdir)):
    return os.path.join(os.path.dirname(os.path.dirname(workdir)),
                        kind, name, f"seed_{seed}")
  return os.path.join(workdir, alone)


def validate(config: mlc.ConfigDict) -> None:
  supervised.validate(config)
  supervised.validate(pretrain_config(config))


def run(config: mlc.ConfigDict, workdir: str, show_progress: bool = True,
        desc: str = "") -> RunResult:
  """Pretrains (or reuses) `config`'s base model, then fine-tunes it in
  `<workdir>/finetune`; see the module docstring."""
  t_start = time.time()
  cached = runs.begin(config, workdir, validate)
  if cached is not None:
    return cached
  if config.pretrain.get("hf_checkpoint"):
    return _from_hf_checkpoint(config, workdir, show_progress, desc, t_start)
  pre_cfg = pretrain_config(config)
  folder = pretrain_dir(config, workdir)
  pre = supervised.train(pre_cfg, folder, show_progress=show_progress,
                         desc=f"{desc or config.experiment} pretrain")
  if pre.status != "finished":
    return RunResult(status=pre.status, workdir=workdir, steps=0, final={},
                     history=[], seconds=time.time() - t_start)
  tune_dir = os.path.join(workdir, "finetune")
  initial = None
  if runs.cached_result(tune_dir, config) is None:
    _, state = supervised.restore(pre_cfg, folder)
    initial = (state.params, state.model_state)
  tuned = supervised.train(config, tune_dir, show_progress=show_progress,
                           desc=desc, initial=initial)
  if tuned.status != "finished":
    return RunResult(status=tuned.status, workdir=workdir, steps=tuned.steps,
                     final={}, history=[], seconds=time.time() - t_start)
  runs.write_config(workdir, config)
  final = {**{f"finetuned/{k}": v for k, v in tuned.final.items()},
           **{f"pretrained/{k}": v for k, v in pre.final.items()}}
  return RunResult(status="finished", workdir=workdir, steps=tuned.steps,
                   final=final, history=tuned.history,
                   seconds=time.time() - t_start)


def _from_hf_checkpoint(config: mlc.ConfigDict, workdir: str,
                        show_progress: bool, desc: str,
                        t_start: float) -> RunResult:
  """Fine-tunes from the parameters of `config.pretrain.hf_checkpoint`."""
  tune_dir = os.path.join(workdir, "finetune")
  initial = None
  if runs.cached_result(tune_dir, config) is None:
    _, params = hf_checkpoint.load_hf_checkpoint(
        config.pretrain.hf_checkpoint, dtype=config.model.dtype)
    initial = (params, {})
  tuned = supervised.train(config, tune_dir, show_progress=show_progress,
                           desc=desc, initial=initial)
  if tuned.status != "finished":
    return RunResult(status=tuned.status, workdir=workdir, steps=tuned.steps,
                     final={}, history=[], seconds=time.time() - t_start)
  runs.write_config(workdir, config)
  return RunResult(status="finished", workdir=workdir, steps=tuned.steps,
                   final={f"finetuned/{k}": v for k, v in tuned.final.items()},
                   history=tuned.history, seconds=time.time() - t_start)


def smoke(config: mlc.ConfigDict, workdir: str) -> None:
  """`smoke.steps` steps of pretraining and of fine-tuning, then the
  fine-tuned run's evaluation."""
  steps = config.smoke.steps
  config = config_lib.apply_overrides(config, {
      "train.steps": steps, "train.tensorboard": False,
      "train.eval_every_epochs": 0,
      # The pretraining run's evaluation is skipped (the fine-tuned run's
      # exercises the same evaluator).
      "pretrain.overrides": tuple(config.pretrain.overrides) + (
          f"train.steps={steps}", "eval.name=none")})
  result = run(config, workdir, show_progress=False)
  runs.check_smoke(result, steps)


@register_protocol("finetune")
def protocol() -> Protocol:
  return Protocol(name="finetune", base_config=base_config,
                  validate=validate, run=run, smoke=smoke)

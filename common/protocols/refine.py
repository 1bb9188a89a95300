"""The refine protocol: train, then evaluate with per-item test-time refinement.

Some papers refine the trained network on each test item alone before
predicting it (EOT-fmaps: 15 Adam steps on one shape pair's entropic-OT
objective). A run of this protocol

1. trains `config` with the supervised loop in `<workdir>/train` (resume,
   SIGTERM, checkpoints, the refusal of another config: all of
   `common.protocols.supervised`), whose final evaluation
   (`config.eval.name`) gives the plain metrics;
2. evaluates the trained state again with the same evaluator through an
   eval step that first refines a copy of the parameters on the evaluated
   batch alone: `refine.steps` steps of the one train step
   (`common.core.train_step`) with the refinement objective (the method's
   config with `refine.method_overrides`), a fresh optimizer of the
   training kind (`config.optim`) at the constant `refine.learning_rate`,
   clipped to `refine.clip_grad_norm`; those metrics are reported as
   `refined/<name>`.

The evaluator must call `setup.eval_step` once per item (a batch holding
one test item, as `experiments/eot_fmaps/evaluate.py` does). Item i's
refinement draws its randomness from `fold_in(run key, i)`. A SIGTERM during
training is handled by the supervised loop; the refinement pass is short
and is redone on rerun.
"""

from __future__ import annotations

import dataclasses
import os
import time

import jax
import ml_collections as mlc

from common import config as config_lib
from common.protocols import Protocol
from common.protocols import RunResult
from common.protocols import build
from common.protocols import register_protocol
from common.protocols import runs
from common.protocols import supervised


def base_config() -> mlc.ConfigDict:
  """The supervised schema plus the `refine` section."""
  c = supervised.base_config()
  c.protocol = "refine"
  c.refine = mlc.ConfigDict(dict(
      steps=15,                  # optimizer steps per test item (0: none)
      learning_rate=1e-3,        # constant
      clip_grad_norm=1.0,        # global-norm clipping (0: none)
      # "key=value" overrides of config.method.<name> for the refinement
      # objective, e.g. ("refine=True",).
      method_overrides=()))
  return c


RULES = {
    "refine.steps": config_lib.at_least(0, integer=True),
    "refine.learning_rate": config_lib.at_least(0.0),
    "refine.clip_grad_norm": config_lib.at_least(0.0),
}


def refine_config(config: mlc.ConfigDict) -> mlc.ConfigDict:
  """The config of the per-item refinement steps."""
  r = config.refine
  overrides = {
      "schedule.name": "constant", "schedule.learning_rate":
          r.learning_rate, "schedule.warmup_epochs": 0.0,
      "schedule.boundaries_epochs": (),
      "optim.clip_grad_norm": r.clip_grad_norm,
      "train.steps": max(r.steps, 1), "train.micro_batches": 1}
  for text in r.method_overrides:
    key, value = config_lib.parse_override(text)
    overrides[f"method.{config.method.name}.{key}"] = value
  return config_lib.apply_overrides(config, overrides)


def validate(config: mlc.ConfigDict) -> None:
  supervised.validate(config)
  config_lib.check_rules(config, RULES)
  try:
    refine_config(config)
  except config_lib.ConfigError as e:
    overrides = tuple(config.refine.method_overrides)
    raise config_lib.ConfigError(
        f"config.refine.method_overrides={overrides}: {e}") from e


def refining_setup(s: build.Setup, config: mlc.ConfigDict) -> build.Setup:
  """`s` whose `eval_step` first refines the state on the batch alone."""
  steps = config.refine.steps
  rcfg = refine_config(config)
  example = build.open_data(config)[3]
  run = dataclasses.replace(s.run, steps_per_epoch=steps, num_epochs=1,
                            total_steps=steps, micro_batches=1)
  r = build.build(rcfg, run, example, generator=None)
  items = [0]

  def eval_step(state, batch, hparams, output_keys=("logits",)):
    del hparams   # the refinement's (same method numbers, its optimizer)
    key = jax.random.fold_in(state.rng, items[0])
    items[0] += 1
    refined = r.init_state(params=state.params,
                           model_state=state.model_state).replace(rng=key)
    for _ in range(steps):
      refined, _, _ = r.train_step(refined, batch, r.hparams)
    return r.eval_step(refined, batch, r.hparams, output_keys=output_keys)

  return dataclasses.replace(s, eval_step=eval_step)


def run(config: mlc.ConfigDict, workdir: str, show_progress: bool = True,
        desc: str = "") -> RunResult:
  """Trains (or resumes) in `<workdir>/train`, then evaluates plain and
  refined; see the module docstring."""
  start = time.time()
  cached = runs.begin(config, workdir, validate)
  if cached is not None:
    return cached
  train_dir = os.path.join(workdir, "train")
  trained = supervised.train(config, train_dir, show_progress=show_progress,
                             desc=desc)
  if trained.status != "finished":
    return dataclasses.replace(trained, workdir=workdir,
                               seconds=time.time() - start)
  final = dict(trained.final)
  if config.refine.steps > 0:
    s, state = supervised.restore(config, train_dir)
    refined = supervised.evaluate(refining_setup(s, config), state)
    final.update({f"refined/{k}": v for k, v in refined.items()})
  runs.write_config(workdir, config)
  return RunResult(status="finished", workdir=workdir, steps=trained.steps,
                   final=final, history=trained.history,
                   seconds=time.time() - start)


def smoke(config: mlc.ConfigDict, workdir: str) -> None:
  """A few training steps, then plain and refined (2 steps) evaluation."""
  config = config_lib.apply_overrides(config, {
      "train.steps": config.smoke.steps, "train.tensorboard": False,
      "train.eval_every_epochs": 0, "refine.steps": 2})
  result = run(config, workdir, show_progress=False)
  if result.status != "finished" or not any(
      k.startswith("refined/") for k in result.final):
    raise AssertionError(f"smoke run ended {result.status} with "
                         f"{result.final}")


@register_protocol("refine")
def protocol() -> Protocol:
  return Protocol(name="refine", base_config=base_config, validate=validate,
                  run=run, smoke=smoke)

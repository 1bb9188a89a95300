"""The probe protocol: train (or reuse) models, then compute metrics on them.

Attacks and audits train nothing themselves: gradient inversion (GIFD) needs
a trained generator and a victim classifier, then solves one inversion per
observed gradient. A run of this protocol

1. for each entry `name: overrides` of `probe.models` ("key=value" strings
   applied to the supervised sections of this config: `data`, `model`,
   `method`, `optim`, `schedule`, `train`, `eval`), trains that model with
   the supervised loop, or reuses it, in
   `<study>/pretrained/<name>_<fingerprint>/seed_<k>` for a study's
   `<study>/<arm>/seed_<k>` workdir (else `<workdir>/<name>`): arms of a
   seed that train a model alike share its run (as `finetune` shares its
   pretraining run);
2. calls the registered probe, `run(config, models, workdir) -> {name:
   float}`, with `models = {name: Trained(config, setup, state)}` restored
   from the final checkpoints; it reads its own config section(s) and may
   write artifacts (figures) into `workdir`.

Probes register like analyses, found by scanning:

    @probe.register_probe("gifd_inversion")
    def make() -> probe.Probe:
      return probe.Probe(run=..., validate=..., smoke={...})

The metrics are saved in `summary.json` with the config's fingerprint, so a
rerun (or the study engine) serves them; a workdir of another config is
refused. SIGTERM while a model trains returns "preempted" (rerun resumes);
during the probe it is honoured when the probe ends (saved, "preempted").
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Mapping, NamedTuple

import ml_collections as mlc

from common import config as config_lib
from common import registry
from common.protocols import Protocol
from common.protocols import RunResult
from common.protocols import build
from common.protocols import finetune
from common.protocols import register_protocol
from common.protocols import runs
from common.protocols import supervised


class Trained(NamedTuple):
  """A trained model handed to a probe."""
  config: mlc.ConfigDict     # its supervised config
  setup: build.Setup         # model, method, steps built from it
  state: Any                 # its final TrainState


class Probe(NamedTuple):
  """A registered probe (see the module docstring)."""
  run: Callable[[mlc.ConfigDict, Mapping[str, Trained], str],
                dict[str, float]]
  validate: Callable[[mlc.ConfigDict], None] | None = None
  smoke: Mapping[str, Any] = {}


PROBES = registry.Registry("probe", ("experiments", "algos"),
                           "register_probe")
register_probe = PROBES.register


def get_probe(name: str) -> Probe:
  out = PROBES.get(name)()
  if not isinstance(out, Probe):
    raise TypeError(f"probe {name!r} returned {type(out).__name__}, not a "
                    "Probe")
  return out


def base_config() -> mlc.ConfigDict:
  """The supervised schema plus `probe`: its name and the models it needs
  (`probe.models.<name> = (overrides...)`, set by the experiment)."""
  c = supervised.base_config()
  c.protocol = "probe"
  c.probe = mlc.ConfigDict(dict(name="", models=mlc.ConfigDict()))
  return c


def model_config(config: mlc.ConfigDict, name: str) -> mlc.ConfigDict:
  """The supervised config of model `name` of `config.seed`."""
  if name not in config.probe.models:
    raise config_lib.ConfigError(
        f"config.probe.models has no model {name!r}; it has "
        f"{sorted(config.probe.models.keys())}")
  return finetune.sections_config(config, config.probe.models[name],
                                  f"{config.experiment}_{name}",
                                  f"config.probe.models.{name}")


def model_dir(config: mlc.ConfigDict, name: str, workdir: str) -> str:
  """Where model `name`'s run lives (see the module docstring)."""
  tag = config_lib.fingerprint(model_config(config, name))[:12]
  return finetune.shared_run_dir(workdir, f"{name}_{tag}", config.seed, name)


def validate(config: mlc.ConfigDict) -> None:
  name = config.probe.name
  if name not in PROBES:
    raise config_lib.ConfigError(
        f"config.probe.name={name!r} is not a registered probe; "
        f"registered: {PROBES.names()}")
  if not config.probe.models:
    raise config_lib.ConfigError("config.probe.models is empty; name at "
                                 "least one model to train")
  for model in config.probe.models:
    supervised.validate(model_config(config, model))
  check = get_probe(name).validate
  if check is not None:
    check(config)


def run(config: mlc.ConfigDict, workdir: str, show_progress: bool = True,
        desc: str = "") -> RunResult:
  """Trains (or reuses) the models, then runs the probe; see the module
  docstring."""
  start = time.time()
  cached = runs.begin(config, workdir, validate)
  if cached is not None:
    return cached
  runs.check_same_config(workdir, config, has_checkpoint=False)
  models = {}
  for name in config.probe.models:
    cfg = model_config(config, name)
    folder = model_dir(config, name, workdir)
    result = supervised.train(cfg, folder, show_progress=show_progress,
                              desc=f"{desc or config.experiment} {name}")
    if result.status != "finished":
      return RunResult(status=result.status, workdir=workdir, steps=0,
                       final={}, history=[], seconds=time.time() - start)
    s, state = supervised.restore(cfg, folder)
    models[name] = Trained(cfg, s, state)
  runs.write_config(workdir, config)
  with runs.Preemption() as preemption:
    final = {k: float(v) for k, v in get_probe(config.probe.name).run(
        config, models, workdir).items()}
  result = RunResult(status="finished", workdir=workdir, steps=1,
                     final=final, history=[], seconds=time.time() - start)
  runs.write_summary(workdir, config, result)
  if preemption.requested:
    result.status = "preempted"
  return result


def smoke(config: mlc.ConfigDict, workdir: str) -> None:
  """The probe's `smoke` overrides (which may also shrink its models),
  `smoke.steps` steps of each model (no evaluation), then the probe;
  metrics must be finite."""
  config = config_lib.apply_overrides(
      config, dict(get_probe(config.probe.name).smoke))
  shrink = (f"train.steps={config.smoke.steps}", "eval.name=none",
            "train.tensorboard=False", "train.eval_every_epochs=0")
  config = config_lib.apply_overrides(config, {
      f"probe.models.{name}": tuple(value) + shrink
      for name, value in config.probe.models.items()})
  result = run(config, workdir, show_progress=False)
  bad = {k: v for k, v in result.final.items() if not math.isfinite(v)}
  if result.status != "finished" or not result.final or bad:
    raise AssertionError(f"smoke probe ended {result.status} with "
                         f"non-finite or no metrics: {bad or result.final}")


@register_protocol("probe")
def protocol() -> Protocol:
  return Protocol(name="probe", base_config=base_config,
                  validate=validate, run=run, smoke=smoke)

"""The analysis protocol: a run computes metrics without training.

Some studies solve problems instead of training a model (a solver against
a reference on synthetic problems, a cost / sparsity trade-off). They
register an analysis, found by scanning like every other registry:

    @analysis.register_analysis("sparse_ot_tradeoff")
    def make() -> analysis.Analysis:
      return analysis.Analysis(run=..., validate=..., smoke={...})

* `run(config) -> {name: float}`: the flat metrics of one seed
  (`config.seed`); it reads its own config section(s).
* `validate(config)`: range checks of those sections (`ConfigError`).
* `smoke`: overrides that shrink the analysis to seconds (smoke tests).

A run is one unit: its metrics are saved in `summary.json` with the
config's fingerprint when it ends, so a rerun (or the study engine) serves
them from there and a workdir of another config is refused. SIGTERM during
the computation is honoured when it ends: the result is saved and the run
reports "preempted", so the study stops and its rerun resumes with the
next run.
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
from common.protocols import register_protocol
from common.protocols import runs


class Analysis(NamedTuple):
  """A registered analysis (see the module docstring)."""
  run: Callable[[mlc.ConfigDict], dict[str, float]]
  validate: Callable[[mlc.ConfigDict], None] | None = None
  smoke: Mapping[str, Any] = {}


ANALYSES = registry.Registry("analysis", ("experiments", "algos"),
                             "register_analysis")
register_analysis = ANALYSES.register


def get_analysis(name: str) -> Analysis:
  out = ANALYSES.get(name)()
  if not isinstance(out, Analysis):
    raise TypeError(f"analysis {name!r} returned {type(out).__name__}, not "
                    "an Analysis")
  return out


def base_config() -> mlc.ConfigDict:
  """Identity, seed, study, smoke, and the name of the analysis; the
  experiment config adds the section(s) its analysis reads."""
  c = config_lib.core_config()
  c.protocol = "analysis"
  c.study.metrics = ()
  c.analysis = mlc.ConfigDict(dict(name=""))
  return c


def validate(config: mlc.ConfigDict) -> None:
  name = config.analysis.name
  if name not in ANALYSES:
    raise config_lib.ConfigError(
        f"config.analysis.name={name!r} is not a registered analysis; "
        f"registered: {ANALYSES.names()}")
  check = get_analysis(name).validate
  if check is not None:
    check(config)


def run(config: mlc.ConfigDict, workdir: str, show_progress: bool = True,
        desc: str = "") -> RunResult:
  """Computes (or reads back) the metrics of `config` in `workdir`."""
  del show_progress
  start = time.time()
  cached = runs.begin(config, workdir, validate)
  if cached is not None:
    return cached
  runs.check_same_config(workdir, config, has_checkpoint=False)
  runs.write_config(workdir, config)
  if desc:
    print(desc, flush=True)
  with runs.Preemption() as preemption:
    final = {k: float(v) for k, v in
             get_analysis(config.analysis.name).run(config).items()}
  result = RunResult(status="finished", workdir=workdir, steps=1,
                     final=final, history=[], seconds=time.time() - start)
  runs.write_summary(workdir, config, result)
  if preemption.requested:
    result.status = "preempted"   # saved: the study stops, a rerun goes on
  return result


def smoke(config: mlc.ConfigDict, workdir: str) -> None:
  """The analysis shrunk by its `smoke` overrides; metrics must be finite."""
  config = config_lib.apply_overrides(
      config, dict(get_analysis(config.analysis.name).smoke))
  result = run(config, workdir, show_progress=False)
  bad = {k: v for k, v in result.final.items() if not math.isfinite(v)}
  if result.status != "finished" or not result.final or bad:
    raise AssertionError(f"smoke analysis ended {result.status} with "
                         f"non-finite or no metrics: {bad or result.final}")


@register_protocol("analysis")
def protocol() -> Protocol:
  return Protocol(name="analysis", base_config=base_config,
                  validate=validate, run=run, smoke=smoke)

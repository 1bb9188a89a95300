"""Protocols: how one run of a config goes, each in one place.

A protocol turns a config and a workdir into a `RunResult`: `supervised`
trains one model through the shared loop; `tta` trains (or loads) a source
model, then adapts it on streams with the same train step; `rl` runs a
whole jitted RL loop; `analysis` computes metrics without training. Each
owns its config schema (`base_config()` holds exactly the keys it reads)
and its validation, and registers with `@register_protocol("name")` on a
function returning its `Protocol`. The study engine (`common.study`) runs a protocol over arms and
seeds; the CLI and the smoke tests go through the same objects.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import ml_collections as mlc

from common import registry

PROTOCOLS = registry.Registry("protocol", ("common.protocols", "experiments"),
                              "register_protocol")
register_protocol = PROTOCOLS.register


@dataclasses.dataclass
class RunResult:
  """One run's outcome.

  Attributes:
    status: "finished" or "preempted".
    workdir: the run's folder.
    steps: optimizer steps (or protocol units) done.
    final: the final metrics, `{name: float}` (flat; nested protocols use
      "/"-joined names such as "continual/r1/gauss/error").
    history: eval records `{"step", "epoch", **metrics}` over training.
    seconds: wall time of this call.
  """
  status: str
  workdir: str
  steps: int
  final: dict[str, float]
  history: list[dict[str, Any]]
  seconds: float

  @property
  def final_eval(self) -> dict[str, float]:  # the v1 name
    return self.final


class Protocol(NamedTuple):
  """A protocol's functions.

  Attributes:
    name: registry name.
    base_config: the schema: every key this protocol reads, with defaults.
    validate: cross-field and range checks, raising `ConfigError`.
    run: `run(config, workdir, show_progress=True, desc="") -> RunResult`;
      resumes what `workdir` holds and refuses a workdir of another config.
    smoke: `smoke(config, workdir)`: a few steps, raising if anything is
      off (the auto-discovered smoke tests).
    run_seeds: optional `run_seeds(config, workdirs: {seed: dir}, ...)
      -> {seed: RunResult}` for protocols that run seeds together (RL vmaps
      them); the study engine prefers it when present.
  """
  name: str
  base_config: Callable[[], mlc.ConfigDict]
  validate: Callable[[mlc.ConfigDict], None]
  run: Callable[..., RunResult]
  smoke: Callable[[mlc.ConfigDict, str], None]
  run_seeds: Callable[..., dict[int, RunResult]] | None = None


def get_protocol(name_or_config: str | mlc.ConfigDict) -> Protocol:
  name = (name_or_config if isinstance(name_or_config, str)
          else name_or_config.protocol)
  return PROTOCOLS.get(name)()


def validate(config: mlc.ConfigDict) -> None:
  """The checks of the config's own protocol."""
  get_protocol(config).validate(config)

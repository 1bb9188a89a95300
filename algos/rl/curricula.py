"""Adversary-temperature curricula of the two-player SAC loop, by name.

The loop (`algos/rl/adversarial_sac.py`) plays every episode at its own
adversary temperature, appended to both agents' observations (the quantal
adversary's entropy weight is read from it). A curriculum decides those
temperatures on the host, between jitted chunks, from its own per-run state
(arrays `[R, ...]`, checkpointed with the agents):

    @register_curriculum("name")
    def make(config) -> Curriculum: ...

`config` is the whole RL config (`common/protocols/rl.py`); a curriculum
reads its numbers from `config.curriculum.<name>`. Runs are the seeds of one
arm, stacked on axis 0. Everything here is numpy: the host's part of the
loop. QARL's curricula live in `algos/rl/qarl.py`.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from common import registry

State = dict[str, np.ndarray]   # per-run arrays [R, ...]


class Curriculum:
  """The temperatures of the next chunk's episodes (default: all 0).

  Subclasses override what they need; every method takes and returns the
  state of all runs `[R, ...]`.
  """

  def init(self, seeds: Sequence[int]) -> State:
    """The state of fresh runs (one per seed)."""
    del seeds
    return {}

  def temperatures(self, state: State, seeds: Sequence[int], start: int,
                   iterations: int, n_envs: int) -> np.ndarray:
    """float32 `[R, iterations, 2, n_envs]`: per run, iteration, phase
    (adversary learns, protagonist learns) and env, from iteration
    `start` on. A pure function of (state, seed, start): a resumed run
    draws what the straight run drew."""
    del state, start
    return np.zeros((len(seeds), iterations, 2, n_envs), np.float32)

  def update(self, state: State, seeds: Sequence[int], temps: np.ndarray,
             disc_returns: np.ndarray
             ) -> tuple[State, list[tuple[int, dict[str, Any]]]]:
    """After a chunk: the new state and `(run, log record)` pairs.

    Args:
      temps: `[R, K, 2, N]` the temperatures the chunk was played at.
      disc_returns: `[R, K, 2, N]` the protagonist's discounted returns.
    """
    del seeds, temps, disc_returns
    return state, []

  def eval_temperature(self, state: State, n_runs: int) -> np.ndarray:
    """`[R]` the temperature a run's own adversary is evaluated at."""
    del state
    return np.zeros((n_runs,), np.float32)

  def describe(self, state: State) -> dict[str, np.ndarray]:
    """`{name: [R]}` final numbers worth reporting (e.g. the teacher's)."""
    del state
    return {}


CURRICULA: registry.Registry[Callable[[Any], Curriculum]] = (
    registry.Registry("curriculum", ("algos",), "register_curriculum"))
register_curriculum = CURRICULA.register


def make(config: Any) -> Curriculum:
  """The curriculum `config.curriculum.name` of an RL config."""
  return CURRICULA.get(config.curriculum.name)(config)


@register_curriculum("none")
def constant(config: Any) -> Curriculum:
  """Temperature 0 in every observation (SAC, RARL: the adversary, if
  any, learns its own entropy weight)."""
  del config
  return Curriculum()

"""What RL algorithms plug into the RL protocol with: learners, curricula.

The RL protocol (`common/protocols/rl.py`) finds both by name; they live
here, in the layer of `algos/` (which registers into them) and of the
environments (the other thing the protocol looks up by name), because
`common` imports no algorithm by name.

* A **learner** (`@register_learner("name")` on `make(config) -> Learner`,
  chosen by `config.agent.name`): the jitted, run-vmapped functions of one
  RL algorithm and the traced numbers of one run (`algos/rl/
  adversarial_sac.py`: two-player SAC, the whole loop under jit).
* A **curriculum** (`@register_curriculum("name")` on `make(config) ->
  Curriculum`, chosen by `config.curriculum.name`, numbers in
  `config.curriculum.<name>`): the adversary temperature of every episode,
  decided on the host between jitted chunks from the curriculum's own
  per-run state (arrays `[R, ...]`, checkpointed with the agents). The
  learner appends it to both agents' observations (the quantal adversary
  reads its entropy weight there). QARL's curricula: `algos/rl/qarl.py`.

`config` is the whole RL config. Runs are the seeds of one arm, stacked on
axis 0 `[R]`. Curricula are numpy: the host's part of the loop.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from common import registry

State = dict[str, np.ndarray]   # per-run arrays [R, ...]


class Learner(NamedTuple):
  """One RL algorithm, built for one config.

  Attributes:
    env: the environment (`common.envs.base.TwoPlayerEnv`).
    hparams: the traced numbers of one run (a pytree of scalars; the
      protocol stacks one per seed).
    fns: jitted functions of runs stacked on axis 0:
      `init(keys [R], hp) -> runs`;
      `train_chunk(runs, hp, temps [R, K, 2, N], start) -> (runs,
      metrics)` with `metrics["return"]`, `metrics["disc_return"]`
      `[R, K, 2, N]` (the protagonist's, per episode);
      `evaluate(runs, env_params {k: [G]}, temps [R], adversary_on [R],
      key, episodes) -> [R, G]` undiscounted returns;
      and whatever else the learner's evaluators use.
    spec: the learner's static structure (hashable).
  """
  env: Any
  hparams: Any
  fns: dict[str, Callable]
  spec: Any = None


LEARNERS: registry.Registry[Callable[[Any], Learner]] = registry.Registry(
    "RL learner", ("common.envs", "algos"), "register_learner")
register_learner = LEARNERS.register


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

  def after_chunk(self, state: State, seeds: Sequence[int],
                  temps: np.ndarray, disc_returns: np.ndarray
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
    registry.Registry("curriculum", ("common.envs", "algos"),
                      "register_curriculum"))
register_curriculum = CURRICULA.register


def make_learner(config: Any) -> Learner:
  """The learner `config.agent.name` of an RL config."""
  return LEARNERS.get(config.agent.name)(config)


def make_curriculum(config: Any) -> Curriculum:
  """The curriculum `config.curriculum.name` of an RL config."""
  return CURRICULA.get(config.curriculum.name)(config)


@register_curriculum("none")
def constant(config: Any) -> Curriculum:
  """Temperature 0 in every observation (SAC, RARL: the adversary, if
  any, learns its own entropy weight)."""
  del config
  return Curriculum()

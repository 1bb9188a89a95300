"""Two-player zero-sum environments as pure functions (one env, unbatched).

Why `common/envs/` (and not `algos/rl/envs/`): an environment is the RL
counterpart of a dataset (`common/data/`): shared by every RL paper, not part
of any one method. `algos/` holds methods only.

Protocol (all functions are pure and jit/vmap friendly; the training loop
vmaps them over parallel environments):

* `default_params() -> dict[str, float]`: the physical parameters
  (mass, friction, length, the adversary's force bound...). They are passed
  as traced scalars to `reset`/`step`, so a robustness grid is a `vmap`
  over parameter values, not a recompilation.
* `reset(key, params) -> state` (a pytree).
* `step(state, prot_action, adv_action, params) -> (state, reward, absorbing)`
  with actions in [-1, 1] (the tanh policy's range): the environment clips
  them there and scales them by its force bounds, so no agent can exceed
  its bound whatever it outputs. `reward` is the protagonist's; the
  adversary receives `-reward` (zero-sum). `absorbing` is 1 at terminal
  states (no bootstrap); time limits are handled by the loop.
* `observe(state) -> obs [obs_dim]`.

Environments register with `@register_env("name")` on a class or factory
`(**kwargs) -> env` and are found by scanning `common/envs/`.
"""

from __future__ import annotations

from typing import Any, Protocol

import jax
import jax.numpy as jnp

from common import registry

Params = dict[str, jax.Array]


class TwoPlayerEnv(Protocol):
  name: str
  obs_dim: int
  prot_action_dim: int
  adv_action_dim: int
  horizon: int
  # Two parameters of `default_params` spanning the robustness heat-map,
  # with their grid ranges (official: 11 values each).
  robustness_axes: tuple[tuple[str, float, float], tuple[str, float, float]]

  def default_params(self) -> dict[str, float]: ...
  def reset(self, key: jax.Array, params: Params) -> Any: ...
  def step(self, state: Any, prot_action: jax.Array, adv_action: jax.Array,
           params: Params) -> tuple[Any, jax.Array, jax.Array]: ...
  def observe(self, state: Any) -> jax.Array: ...


def as_params(values: dict[str, float], allowed: dict[str, float]) -> Params:
  """Float32 arrays for `values`, checking the names against `allowed`."""
  unknown = sorted(set(values) - set(allowed))
  if unknown:
    raise ValueError(f"unknown environment parameter(s) {unknown}; "
                     f"allowed: {sorted(allowed)}")
  merged = dict(allowed, **values)
  return {k: jnp.asarray(v, jnp.float32) for k, v in merged.items()}


def clip_unit(action: jax.Array) -> jax.Array:
  return jnp.clip(action, -1.0, 1.0)


ENVS = registry.Registry("environment", ("common.envs",), "register_env")
register_env = ENVS.register


def names() -> list[str]:
  """The registered environments (found without importing them)."""
  return ENVS.names()


def make(name: str, **kwargs) -> TwoPlayerEnv:
  """An environment by name (`brax_*` import brax on first use)."""
  return ENVS.get(name)(**kwargs)

"""Brax (MJX) locomotion with an adversarial force on the torso.

Full-scale counterpart of the paper's dm_control two-player tasks
(`src/dm_control_extensions/suite/*_two_players.py` in
AryamanReddi99/quantal-adversarial-rl, where the adversary pushes bodies
with bounded external forces). This is a change of simulator: Brax's MJX
pipeline runs the MuJoCo models of Brax's `hopper`, `halfcheetah`,
`walker2d` and `ant` (Gym-style rewards and terminations, not dm_control's
[0, 1] rewards), so returns are not comparable with the paper's tables.

The adversary applies a force of norm <= `adv_max_force` per axis to the
torso (x and z for the planar bodies, x, y, z for the ant) through MJX's
`xfrc_applied`. `mass_scale` and `friction_scale` scale every body mass
and geom friction (the two axes of the robustness grid).

brax is NOT a dependency of the repo: it is imported here, lazily, and only
when a `brax_*` environment is built (e.g. by the `brax_*` variants of
experiments/qarl/config.py). Not run in this repository's CI (brax is not
installed there); see experiments/qarl/README.md.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from common.envs import base

_TORSO = {"hopper": "torso", "halfcheetah": "torso", "walker2d": "torso",
          "ant": "torso"}
_PLANAR = ("hopper", "halfcheetah", "walker2d")


def _import_brax():
  try:
    from brax import envs  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(
        "the brax_* environments need brax (pip install 'brax>=0.10' "
        "mujoco-mjx); the CPU variants point_mass and pendulum do not") from e
  return envs


def make(name: str, horizon: int = 1000, **kwargs) -> "BraxAdversarial":
  if name not in _TORSO:
    raise ValueError(f"unknown brax task {name!r}; allowed: {sorted(_TORSO)}")
  return BraxAdversarial(name, horizon, **kwargs)


@base.register_env("brax_hopper")
def hopper(**kwargs) -> "BraxAdversarial":
  return make("hopper", **kwargs)


@base.register_env("brax_halfcheetah")
def halfcheetah(**kwargs) -> "BraxAdversarial":
  return make("halfcheetah", **kwargs)


@base.register_env("brax_walker2d")
def walker2d(**kwargs) -> "BraxAdversarial":
  return make("walker2d", **kwargs)


@base.register_env("brax_ant")
def ant(**kwargs) -> "BraxAdversarial":
  return make("ant", **kwargs)


@dataclasses.dataclass(frozen=True, eq=False)
class BraxAdversarial:
  """A Brax env as a `common.envs.base.TwoPlayerEnv`."""
  task: str
  horizon: int = 1000
  robustness_axes = (("mass_scale", 0.5, 1.5), ("friction_scale", 0.5, 1.5))

  def __post_init__(self):
    envs = _import_brax()
    env = envs.get_environment(self.task, backend="mjx")
    object.__setattr__(self, "_env", env)
    object.__setattr__(self, "name", f"brax_{self.task}")
    object.__setattr__(self, "obs_dim", int(env.observation_size))
    object.__setattr__(self, "prot_action_dim", int(env.action_size))
    object.__setattr__(self, "adv_action_dim",
                       2 if self.task in _PLANAR else 3)
    object.__setattr__(self, "_torso",
                       int(env.sys.mj_model.body(_TORSO[self.task]).id))

  def __hash__(self):
    return hash((type(self), self.task, self.horizon))

  def __eq__(self, other):
    return (type(other) is type(self) and other.task == self.task
            and other.horizon == self.horizon)

  def default_params(self) -> dict[str, float]:
    return dict(adv_max_force=1.0, mass_scale=1.0, friction_scale=1.0)

  def _sys(self, params: base.Params):
    sys = self._env.sys
    return sys.tree_replace({
        "body_mass": sys.body_mass * params["mass_scale"],
        "geom_friction": sys.geom_friction * params["friction_scale"]})

  def reset(self, key: jax.Array, params: base.Params) -> Any:
    del params
    return self._env.reset(key)

  def observe(self, state: Any) -> jax.Array:
    return state.obs

  def step(self, state: Any, prot_action: jax.Array, adv_action: jax.Array,
           params: base.Params):
    force = base.clip_unit(adv_action) * params["adv_max_force"]
    xyz = (jnp.stack([force[0], 0.0, force[1]]) if self.adv_action_dim == 2
           else force)
    data = state.pipeline_state
    xfrc = data.xfrc_applied.at[self._torso, :3].set(xyz)
    state = state.replace(pipeline_state=data.replace(xfrc_applied=xfrc))
    env = self._env
    # Step with the scaled physics (same code path as env.step, other sys).
    sys = self._sys(params)
    old_sys = env.sys
    object.__setattr__(env, "sys", sys)
    try:
      new = env.step(state, base.clip_unit(prot_action))
    finally:
      object.__setattr__(env, "sys", old_sys)
    done = new.done
    # Absorbing: keep the terminal state, zero reward afterwards.
    reward = jnp.where(state.done > 0, 0.0, new.reward)
    new = jax.tree.map(lambda a, b: jnp.where(state.done > 0, a, b), state,
                       new)
    return new, reward, jnp.maximum(done, state.done)

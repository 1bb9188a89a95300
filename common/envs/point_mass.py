"""The QARL repo's point-mass-vs-wind navigation task, ported to JAX.

Source (read, not copied): AryamanReddi99/quantal-adversarial-rl @ aae57b7,
`src/mushroom_rl_extensions/environments/point_mass_envs/
abstract_point_mass_vs_wind.py` and `point_mass_vs_bidirectional_wind.py`.

A point mass (state `[x, vx, y, vy]`) starts at (0, -1.5) and must reach
the goal (0, 1.5) in a 4 x 4 box through a gap of width 1 at x = 0 in a wall
along y = 0. The protagonist pushes with a 2-D force |F_i| <= 1 per axis;
while the mass is in the band y in [-1, 0], the adversary blows a horizontal
wind |W| <= 10 (the bidirectional-wind variant). Dynamics are explicit
Euler, dt 0.01, 10 substeps per action, viscous friction:
`m dv/dt = F - friction * v`. Reward exp(-|pos - goal|) - 1 per step;
reaching the goal (distance <= 0.1) is absorbing with reward 0.

Kept as in the official code: the wall test interpolates the crossing point
of y = 0 and stops the mass at 1e-4 from the wall with zero vertical speed
(keeping the horizontal speed of the previous substep); hitting the box's
sides zeroes the speed along that axis; the wind band is tested at the
state before the action. The official horizon is 500; configs pick theirs.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from common.envs import base

_START = (0.0, 0.0, -1.5, 0.0)
_GOAL = (0.0, 1.5)


class PointMassState(NamedTuple):
  s: jax.Array          # [4]: x, vx, y, vy
  absorbed: jax.Array   # scalar float, 1 once the goal was reached


@base.register_env("point_mass")
@dataclasses.dataclass(frozen=True)
class PointMassVsWind:
  """Point mass vs a bounded horizontal wind (see module docstring)."""
  name = "point_mass"
  obs_dim = 4
  prot_action_dim = 2
  adv_action_dim = 1
  robustness_axes = (("mass", 2.5, 7.5), ("friction", 0.5, 1.5))

  horizon: int = 500
  substeps: int = 10

  def default_params(self) -> dict[str, float]:
    return dict(mass=5.0, friction=1.0, prot_max_force=1.0,
                adv_max_force=10.0, size=4.0, gap_x=0.0, gap_width=1.0,
                wind_low=-1.0, goal_tol=0.1, dt=0.01)

  def reset(self, key: jax.Array, params: base.Params) -> PointMassState:
    del key, params  # the official start state is fixed
    return PointMassState(jnp.asarray(_START, jnp.float32),
                          jnp.zeros((), jnp.float32))

  def observe(self, state: PointMassState) -> jax.Array:
    return state.s

  def _substep(self, s: jax.Array, force: jax.Array,
               p: base.Params) -> jax.Array:
    vel = s[jnp.array([1, 3])]
    acc = (force - p["friction"] * vel) / p["mass"]
    new = s + p["dt"] * jnp.stack([vel[0], acc[0], vel[1], acc[1]])
    half = p["size"] / 2
    # Leaving the box zeroes the speed along that axis, then clip.
    out_x = jnp.abs(new[0]) > half
    out_y = jnp.abs(new[2]) > half
    new = new.at[1].set(jnp.where(out_x, 0.0, new[1]))
    new = new.at[3].set(jnp.where(out_y, 0.0, new[3]))
    new = new.at[0].set(jnp.clip(new[0], -half, half))
    new = new.at[2].set(jnp.clip(new[2], -half, half))
    # Crossing y = 0 outside the gap stops the mass at the wall.
    down = (s[2] >= 0) & (new[2] < 0)
    up = (s[2] <= 0) & (new[2] > 0)
    frac = (0.0 - s[2]) / jnp.where(new[2] == s[2], 1.0, new[2] - s[2])
    x_cross = frac * new[0] + (1.0 - frac) * s[0]
    blocked = jnp.abs(x_cross - p["gap_x"]) > 0.5 * p["gap_width"]
    wall_y = jnp.where(down, 1e-4, -1e-4)
    at_wall = jnp.stack([x_cross, s[1], wall_y, 0.0])
    return jnp.where((down | up) & blocked, at_wall, new)

  def step(self, state: PointMassState, prot_action: jax.Array,
           adv_action: jax.Array, params: base.Params):
    force = base.clip_unit(prot_action) * params["prot_max_force"]
    wind = base.clip_unit(adv_action)[0] * params["adv_max_force"]
    y = state.s[2]
    in_band = (params["wind_low"] <= y) & (y <= 0.0)
    force = force + jnp.stack([jnp.where(in_band, wind, 0.0), 0.0])
    new = jax.lax.fori_loop(0, self.substeps,
                            lambda _, s: self._substep(s, force, params),
                            state.s)
    # An absorbed state stays put.
    new = jnp.where(state.absorbed > 0, state.s, new)
    dist = jnp.linalg.norm(new[jnp.array([0, 2])] - jnp.asarray(_GOAL))
    success = jnp.maximum(state.absorbed,
                          (dist <= params["goal_tol"]).astype(jnp.float32))
    reward = jnp.where(success > 0, 0.0, jnp.exp(-dist) - 1.0)
    return PointMassState(new, success), reward, success

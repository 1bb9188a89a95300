"""Pendulum swing-up (gymnax / gym Pendulum-v1) with an adversarial torque.

With the default parameters, no friction and a zero adversary, one step is
exactly gymnax's `Pendulum-v1` step (semi-implicit Euler, dt 0.05, speed
clipped at 8, torque <= 2, reward -(angle^2 + 0.1 thdot^2 + 0.001 u^2),
horizon 200, uniform random start), so our SAC can be benchmarked against
rejax's on the same dynamics.

Added for the two-player game and robustness grids: the adversary applies a
second torque |u_adv| <= `adv_max_torque` at the pivot; viscous friction
`friction * thdot` opposes the motion; mass and length are parameters. The
rod (uniform, pivot at one end, theta = 0 upright) obeys

    (m l^2 / 3) thdd = m g (l / 2) sin(theta) + u + u_adv - friction * thdot

whose energy E = (m l^2 / 6) thdot^2 + m g (l / 2) cos(theta) is conserved
without torques and friction (the semi-implicit Euler step conserves a
nearby quantity; `substeps` > 1 makes it as close as wanted).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from common.envs import base


class PendulumState(NamedTuple):
  theta: jax.Array
  theta_dot: jax.Array


def angle_normalize(x: jax.Array) -> jax.Array:
  return ((x + jnp.pi) % (2 * jnp.pi)) - jnp.pi


def energy(state: PendulumState, params: base.Params) -> jax.Array:
  """Kinetic + potential energy of the rod (conserved when frictionless)."""
  m, l, g = params["mass"], params["length"], params["gravity"]
  return (m * l ** 2 / 6.0) * state.theta_dot ** 2 + m * g * (
      l / 2.0) * jnp.cos(state.theta)


@base.register_env("pendulum")
@dataclasses.dataclass(frozen=True)
class AdversarialPendulum:
  """Pendulum-v1 plus a bounded adversarial torque (module docstring)."""
  name = "pendulum"
  obs_dim = 3
  prot_action_dim = 1
  adv_action_dim = 1
  robustness_axes = (("mass", 0.5, 1.5), ("length", 0.5, 1.5))

  horizon: int = 200
  substeps: int = 1

  def default_params(self) -> dict[str, float]:
    return dict(mass=1.0, length=1.0, friction=0.0, gravity=10.0,
                max_torque=2.0, adv_max_torque=0.5, max_speed=8.0,
                dt=0.05)

  def reset(self, key: jax.Array, params: base.Params) -> PendulumState:
    del params
    high = jnp.array([jnp.pi, 1.0])
    x = jax.random.uniform(key, (2,), minval=-high, maxval=high)
    return PendulumState(x[0], x[1])

  def observe(self, state: PendulumState) -> jax.Array:
    return jnp.stack([jnp.cos(state.theta), jnp.sin(state.theta),
                      state.theta_dot])

  def step(self, state: PendulumState, prot_action: jax.Array,
           adv_action: jax.Array, params: base.Params):
    u = base.clip_unit(prot_action)[0] * params["max_torque"]
    u_adv = base.clip_unit(adv_action)[0] * params["adv_max_torque"]
    m, l, g = params["mass"], params["length"], params["gravity"]
    reward = -(angle_normalize(state.theta) ** 2
               + 0.1 * state.theta_dot ** 2 + 0.001 * u ** 2)
    dt = params["dt"] / self.substeps

    def substep(_, s):
      theta, theta_dot = s
      torque = u + u_adv - params["friction"] * theta_dot
      acc = 3.0 * g / (2.0 * l) * jnp.sin(theta) + 3.0 / (m * l ** 2) * torque
      theta_dot = jnp.clip(theta_dot + acc * dt, -params["max_speed"],
                           params["max_speed"])
      return theta + theta_dot * dt, theta_dot

    theta, theta_dot = jax.lax.fori_loop(
        0, self.substeps, substep, (state.theta, state.theta_dot))
    return PendulumState(theta, theta_dot), reward, jnp.zeros(())

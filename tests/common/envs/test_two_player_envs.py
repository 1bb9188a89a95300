"""Two-player environments: conservation laws, bounds, official dynamics."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from common.envs import base
from common.envs import pendulum as pendulum_lib
from common.envs import point_mass as point_mass_lib


def _rollout(env, state, params, prot, adv, steps):
  def body(s, _):
    s, r, d = env.step(s, prot, adv, params)
    return s, (s, r, d)
  return jax.jit(lambda s: jax.lax.scan(body, s, None, length=steps))(state)


def test_frictionless_pendulum_conserves_energy_without_actions():
  env = base.make("pendulum", substeps=20)
  params = base.as_params({}, env.default_params())
  start = pendulum_lib.PendulumState(jnp.float32(2.0), jnp.float32(0.5))
  _, (traj, _, _) = _rollout(env, start, params, jnp.zeros(1), jnp.zeros(1),
                             400)
  e0 = pendulum_lib.energy(start, params)
  e = jax.vmap(lambda s: pendulum_lib.energy(s, params))(traj)
  # Swings through a wide arc (speed below the clip) at constant energy.
  assert float(jnp.abs(traj.theta_dot).max()) < 8.0
  scale = params["mass"] * params["gravity"] * params["length"]
  np.testing.assert_allclose(e, e0, atol=5e-3 * float(scale))
  # With friction it only loses energy.
  params_f = base.as_params({"friction": 0.2}, env.default_params())
  _, (traj_f, _, _) = _rollout(env, start, params_f, jnp.zeros(1),
                               jnp.zeros(1), 400)
  e_f = jax.vmap(lambda s: pendulum_lib.energy(s, params_f))(traj_f)
  assert float(e_f[-1]) < float(e0) - 1.0
  assert np.all(np.diff(np.asarray(e_f)) < 1e-3)


def test_pendulum_is_gymnax_pendulum_v1_without_adversary():
  gymnax = pytest.importorskip("gymnax")
  g_env, g_params = gymnax.make("Pendulum-v1")
  env = base.make("pendulum")
  params = base.as_params({}, env.default_params())
  key = jax.random.PRNGKey(3)
  _, g_state = g_env.reset(key, g_params)
  state = pendulum_lib.PendulumState(g_state.theta, g_state.theta_dot)
  for i in range(20):
    a = jnp.array([np.sin(i) * 3.0])   # beyond the bound on purpose
    _, g_state, g_r, _, _ = g_env.step_env(key, g_state, a, g_params)
    state, r, _ = env.step(state, a / 2.0, jnp.zeros(1), params)
    np.testing.assert_allclose(r, g_r, rtol=1e-5)
    np.testing.assert_allclose([state.theta, state.theta_dot],
                               [g_state.theta, g_state.theta_dot], rtol=1e-5)


def test_pendulum_adversary_torque_is_bounded():
  env = base.make("pendulum")
  params = base.as_params({}, env.default_params())
  s = pendulum_lib.PendulumState(jnp.float32(0.0), jnp.float32(0.0))
  big, _, _ = env.step(s, jnp.zeros(1), jnp.array([100.0]), params)
  unit, _, _ = env.step(s, jnp.zeros(1), jnp.array([1.0]), params)
  np.testing.assert_array_equal(big.theta_dot, unit.theta_dot)
  # thdd = 3 u_adv / (m l^2) with u_adv = 0.5.
  np.testing.assert_allclose(unit.theta_dot, 3 * 0.5 * 0.05, rtol=1e-6)


def _pm(x, vx, y, vy):
  return point_mass_lib.PointMassState(
      jnp.asarray([x, vx, y, vy], jnp.float32), jnp.zeros(()))


def test_point_mass_free_motion_conserves_momentum():
  env = base.make("point_mass")
  params = base.as_params({"friction": 0.0}, env.default_params())
  _, (traj, _, _) = _rollout(env, _pm(-1.5, 0.3, 0.5, 0.1), params,
                             jnp.zeros(2), jnp.zeros(1), 20)
  np.testing.assert_allclose(traj.s[:, 1], 0.3, rtol=1e-6)
  np.testing.assert_allclose(traj.s[:, 3], 0.1, rtol=1e-6)
  np.testing.assert_allclose(traj.s[-1, 0], -1.5 + 0.3 * 20 * 0.1, rtol=1e-4)


def test_point_mass_action_bounds_and_wind_band():
  env = base.make("point_mass")
  params = base.as_params({}, env.default_params())
  s = _pm(0.0, 0.0, -0.5, 0.0)            # inside the wind band
  huge, _, _ = env.step(s, jnp.array([50.0, -50.0]), jnp.array([80.0]),
                        params)
  unit, _, _ = env.step(s, jnp.array([1.0, -1.0]), jnp.array([1.0]), params)
  np.testing.assert_array_equal(huge.s, unit.s)
  # Outside the band the wind has no effect.
  out = _pm(0.0, 0.0, -1.5, 0.0)
  calm, _, _ = env.step(out, jnp.zeros(2), jnp.zeros(1), params)
  windy, _, _ = env.step(out, jnp.zeros(2), jnp.ones(1), params)
  np.testing.assert_array_equal(calm.s, windy.s)
  inside, _, _ = env.step(s, jnp.zeros(2), jnp.ones(1), params)
  assert float(inside.s[1]) > 0.15   # wind 10 on mass 5 for 0.1 s


def test_point_mass_wall_blocks_outside_the_gap_and_goal_absorbs():
  env = base.make("point_mass")
  params = base.as_params({}, env.default_params())
  blocked, _, _ = env.step(_pm(1.2, 0.0, -0.05, 2.0), jnp.zeros(2),
                           jnp.zeros(1), params)
  assert float(blocked.s[2]) == pytest.approx(-1e-4)
  assert float(blocked.s[3]) == 0.0
  through, _, _ = env.step(_pm(0.0, 0.0, -0.05, 2.0), jnp.zeros(2),
                           jnp.zeros(1), params)
  assert float(through.s[2]) > 0.0
  near_goal = _pm(0.0, 0.0, 1.45, 0.5)
  s1, r1, d1 = env.step(near_goal, jnp.zeros(2), jnp.zeros(1), params)
  assert float(d1) == 1.0 and float(r1) == 0.0
  s2, r2, d2 = env.step(s1, jnp.ones(2), jnp.ones(1), params)
  np.testing.assert_array_equal(s2.s, s1.s)
  assert float(d2) == 1.0 and float(r2) == 0.0
  _, r_far, _ = env.step(_pm(0.0, 0.0, -1.5, 0.0), jnp.zeros(2),
                         jnp.zeros(1), params)
  np.testing.assert_allclose(r_far, np.exp(-3.0) - 1.0, rtol=1e-5)


def test_unknown_names_fail_clearly():
  with pytest.raises(ValueError, match="registered environments: .*point_mass"):
    base.make("cartpole3d")
  with pytest.raises(ValueError, match="allowed"):
    base.as_params({"mas": 1.0}, {"mass": 1.0})


def test_brax_envs_are_optional_with_a_clear_error():
  try:
    import brax  # pylint: disable=g-import-not-at-top,unused-import
    pytest.skip("brax is installed here")
  except ImportError:
    pass
  with pytest.raises(ImportError, match="pip install"):
    base.make("brax_hopper")
  with pytest.raises(ValueError, match="registered environments: .*brax_ant"):
    base.make("brax_humanoid_xl")

"""QARL: temperature curricula, the per-sample adversary temperature, and
the SAC updates through the repo's one optimizer update."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

from algos.rl import adversarial_sac as asac
from algos.rl import qarl
from common.envs import base
from common.envs import interfaces


def test_linear_schedule_endpoints():
  t = qarl.linear_temperature(np.array([0, 30, 60, 90]), 90)
  np.testing.assert_allclose(t, [0.05, 0.0255, 0.001, 0.001])


def test_gamma_kl_matches_numerical_integration_and_its_gradient():
  rate = 1000.0
  p, q = stats.gamma(7.0, scale=1 / rate), stats.gamma(3.0, scale=1 / rate)
  numeric = integrate.quad(lambda x: p.pdf(x) * (p.logpdf(x) - q.logpdf(x)),
                           0, 0.1, points=[0.007], limit=200)[0]
  np.testing.assert_allclose(qarl.gamma_kl(7.0, 3.0, rate), numeric,
                             rtol=1e-5)
  eps = 1e-5
  fd = (qarl.gamma_kl(7.0 + eps, 3.0, rate)
        - qarl.gamma_kl(7.0 - eps, 3.0, rate)) / (2 * eps)
  np.testing.assert_allclose(qarl.gamma_kl_grad(7.0, 3.0), fd, rtol=1e-5)


@pytest.mark.parametrize("scenario", range(4))
def test_self_paced_update_respects_the_kl_trust_region(scenario):
  cur = qarl.GammaCurriculum(perf_lb=-50.0)
  rng = np.random.default_rng(scenario)
  conc, above = [50.0, 20.0, 5.0, 2.0][scenario], False
  for _ in range(5):
    temps = cur.sample(rng, conc, (30,))
    # Returns well above the bound, falling with temperature.
    returns = -10.0 - 300.0 * temps + rng.normal(size=30)
    new, above, info = qarl.self_paced_update(cur, conc, above, temps,
                                              returns)
    assert qarl.gamma_kl(new, conc, cur.rate) <= cur.max_kl + 1e-6
    assert info["perf_after"] >= cur.perf_lb - 1e-6
    if conc > cur.target_conc + 0.1:
      assert new < conc, info  # moved towards the target (nu = 1)
    conc = new
  assert above


def test_self_paced_update_freezes_below_the_performance_bound():
  cur = qarl.GammaCurriculum(perf_lb=0.0)
  temps = cur.sample(np.random.default_rng(0), 50.0, (30,))
  new, above, info = qarl.self_paced_update(cur, 50.0, False, temps,
                                            -np.ones(30))
  assert new == 50.0 and not above and info["status"] == "frozen"


def test_self_paced_update_reports_failures_and_keeps_nu():
  cur = qarl.GammaCurriculum(perf_lb=-50.0)
  temps = cur.sample(np.random.default_rng(0), 50.0, (30,))
  returns = np.full(30, -10.0)
  returns[0] = np.nan
  new, _, info = qarl.self_paced_update(cur, 50.0, True, temps, returns)
  assert new == 50.0
  assert info["status"].startswith(("failed", "kept")), info


def _tiny_spec():
  env = base.make("pendulum", horizon=4)
  return asac.Spec(env=env, hidden=(8,), n_envs=2, batch_size=6,
                   buffer_size=16, updates_per_step=1, learning_starts=1)


def _hp(spec, from_obs):
  f = jnp.float32
  return asac.HParams(f(0.99), f(0.005), f(1e-2), f(1e-2), f(1e-2), f(0.0),
                      f(1.0), f(from_obs), f(1.0),
                      base.as_params({}, spec.env.default_params()))


def test_adversary_temperature_comes_from_each_sample_observation():
  spec = _tiny_spec()
  agent = asac.init_agent(spec, jax.random.PRNGKey(0), 1, jnp.float32(0.0))
  rng = np.random.default_rng(0)
  temps = jnp.asarray([0.001, 0.01, 0.1, 0.5, 1.0, 2.0], jnp.float32)
  obs = jnp.concatenate([jnp.asarray(rng.normal(size=(6, 3)), jnp.float32),
                         temps[:, None]], 1)
  batch = asac.Buffer(obs, jnp.zeros((6, 1)), jnp.ones(6), obs, jnp.zeros(6))
  key = jax.random.PRNGKey(1)
  # Temperatures, flags and learning rates are traced: one trace for all.
  step = jax.jit(chex.assert_max_traces(
      lambda ag, b, h, f: asac.sac_update(spec, ag, b, key, h, f, 1), n=1))

  def update(from_obs, log_alpha):
    ag = agent._replace(log_alpha=jnp.float32(log_alpha))
    return step(ag, batch, _hp(spec, from_obs), jnp.float32(from_obs))

  new_a, info = update(1.0, 0.0)
  np.testing.assert_allclose(info["alpha"], temps.mean(), rtol=1e-6)
  # The learned temperature plays no part in the QARL adversary ...
  new_b, _ = update(1.0, 3.0)
  for a, b in zip(jax.tree.leaves((new_a.actor, new_a.critic)),
                  jax.tree.leaves((new_b.actor, new_b.critic))):
    np.testing.assert_array_equal(a, b)
  # ... but it does for the RARL adversary.
  new_c, info_c = update(0.0, 3.0)
  np.testing.assert_allclose(info_c["alpha"], np.exp(3.0), rtol=1e-6)
  assert not np.allclose(jax.tree.leaves(new_a.actor)[0],
                         jax.tree.leaves(new_c.actor)[0])
  # Per sample, not averaged: same mean temperature, different spread,
  # gives a different actor step.
  batch_flat = batch._replace(
      obs=obs.at[:, -1].set(temps.mean()),
      next_obs=obs.at[:, -1].set(temps.mean()))
  new_d, _ = step(agent, batch_flat, _hp(spec, 1.0), jnp.float32(1.0))
  assert not np.allclose(jax.tree.leaves(new_a.actor)[0],
                         jax.tree.leaves(new_d.actor)[0])


def test_sac_updates_are_adam_at_the_traced_rate():
  # Through `train_step.optimizer_step`: params - lr * m_hat / (sqrt(v_hat)
  # + eps), optax's Adam defaults, computed here by hand in float64.
  rng = np.random.default_rng(0)
  params = {"w": jnp.asarray(rng.normal(size=(3, 4)), jnp.float32)}
  state = asac._ADAM.init(params)  # pylint: disable=protected-access
  step = jax.jit(asac._adam_step)  # pylint: disable=protected-access
  p = np.asarray(params["w"], np.float64)
  m = v = np.zeros_like(p)
  for t, lr in enumerate([3e-3, 1e-2, 1e-3], start=1):
    g = rng.normal(size=(3, 4)).astype(np.float32)
    params, state = step(params, state, {"w": jnp.asarray(g)},
                         jnp.float32(lr))
    m = 0.9 * m + 0.1 * g
    v = 0.999 * v + 0.001 * g.astype(np.float64) ** 2
    p = p - lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t))
                                         + 1e-8)
    np.testing.assert_allclose(params["w"], p, rtol=1e-5, atol=1e-6)


def _curriculum_config(name, **numbers):
  from common import config as config_lib  # pylint: disable=g-import-not-at-top
  config = config_lib.load_config("experiments/qarl/config.py:pendulum")
  overrides = {"curriculum.name": name, "agent.adversary": "quantal",
               "agent.n_envs": 2, "train.iterations": 9}
  overrides.update({f"curriculum.{name}.{k}": v for k, v in numbers.items()})
  return config_lib.apply_overrides(config, overrides)


def test_linear_curriculum_feeds_the_schedule_to_every_episode():
  cur = interfaces.make_curriculum(_curriculum_config("linear"))
  temps = cur.temperatures(cur.init([3, 4]), [3, 4], 3, 2, 2)
  assert temps.shape == (2, 2, 2, 2) and temps.dtype == np.float32
  expected = qarl.linear_temperature(np.array([3, 4]), 9)
  np.testing.assert_allclose(temps[1, :, 1, 0], expected, rtol=1e-6)
  assert len(np.unique(temps[:, 0])) == 1   # same for all runs and envs
  np.testing.assert_allclose(cur.eval_temperature({}, 2), [0.001, 0.001])


def test_self_paced_curriculum_updates_after_n_samples_pairs():
  cur = interfaces.make_curriculum(_curriculum_config("self_paced_gamma", perf_lb=-50.0,
                                          n_samples=6))
  seeds = [0, 1]
  state = cur.init(seeds)
  temps = cur.temperatures(state, seeds, 0, 1, 2)   # 4 pairs per iteration
  returns = -10.0 - 300.0 * temps
  state, logs = cur.after_chunk(state, seeds, temps, returns)
  assert not logs and list(state["pair_count"]) == [4, 4]
  temps = cur.temperatures(state, seeds, 1, 1, 2)
  state, logs = cur.after_chunk(state, seeds, temps, -10.0 - 300.0 * temps)
  # 8 >= 6 pairs: one teacher step per run, within the KL trust region.
  assert [r for r, _ in logs] == [0, 1]
  assert list(state["pair_count"]) == [0, 0] and all(state["above"])
  for conc in state["conc"]:
    assert conc < 50.0
    assert qarl.gamma_kl(float(conc), 50.0, 1000.0) <= 0.5 + 1e-6
  np.testing.assert_allclose(cur.eval_temperature(state, 2),
                             state["conc"] / 1000.0, rtol=1e-6)
  assert cur.describe(state)["conc"] is not None
  # Draws depend on (seed, iteration) only.
  again = cur.temperatures(cur.init([1]), [1], 0, 1, 2)
  first = cur.temperatures(cur.init(seeds), seeds, 0, 1, 2)
  np.testing.assert_array_equal(again[0], first[1])


def test_unknown_curriculum_lists_the_registered_ones():
  with pytest.raises(ValueError, match="linear, none, self_paced_gamma"):
    interfaces.CURRICULA.get("lineer")

"""Benchmark systems, integrators and the `dynamical_system` generator."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from common import config as config_lib
from common.data import dynamical
from common.data import dynamical_generators
from common.data import procedural


def _config(**kwargs):
  return ml_collections.ConfigDict(
      {"data": {"name": "dynamical_system", "kwargs": kwargs}})


def test_rk4_matches_the_harmonic_oscillators_closed_form():
  # x' = v, v' = -w^2 x: x(t) = cos(w t), v(t) = -w sin(w t).
  w = 2.0
  p = {"matrix": jnp.array([[0.0, 1.0], [-w * w, 0.0]])}
  xs = dynamical.integrate_rk4(dynamical.linear, jnp.array([1.0, 0.0]), p,
                               0.01, 300)
  t = 0.01 * jnp.arange(1, 301)
  exact = jnp.stack([jnp.cos(w * t), -w * jnp.sin(w * t)], -1)
  np.testing.assert_allclose(xs, exact, atol=2e-6)


def test_rk4_matches_diffrax_on_lorenz63():
  sys = dynamical.SYSTEMS["lorenz63"]
  x0 = jnp.array([1.0, 2.0, 20.0])
  ours = dynamical.integrate_rk4(sys.vector_field, x0, sys.params, 0.01, 100,
                                 substeps=4)
  ts = 0.01 * jnp.arange(101)
  ref = dynamical.integrate_diffrax(sys.vector_field, x0, sys.params, ts,
                                    "tsit5", rtol=1e-10, atol=1e-10)
  np.testing.assert_allclose(ours, ref[1:], atol=2e-3)


@jax.jit
def _twenty_steps_of_every_system(key):
  out = {}
  for name, sys in dynamical.SYSTEMS.items():   # one compilation for all
    x0 = dynamical.initial_states(sys, key, 2)
    x = jax.lax.fori_loop(0, 20, lambda _, x, s=sys: dynamical.rk4_step(
        s.vector_field, x, s.params, s.dt), x0)
    out[name] = (x0, x)
  return out


def test_every_system_stays_bounded_and_moves():
  for name, (x0, x) in _twenty_steps_of_every_system(
      jax.random.PRNGKey(0)).items():
    assert x.shape == (2, dynamical.SYSTEMS[name].dim), name
    assert jnp.all(jnp.isfinite(x)), name
    assert float(jnp.abs(x - x0).max()) > 1e-3, name


def test_generator_windows_are_standardised_and_noisy_as_asked():
  gen = procedural.make(_config(system="lorenz63", length=64, obs_noise=0.1))
  sample = jax.jit(gen.sample, static_argnums=1)
  batch = sample(jax.random.PRNGKey(1), 32)
  assert batch["x"].shape == batch["clean"].shape == (32, 64, 3)
  clean = np.asarray(batch["clean"]).reshape(-1, 3)
  assert np.all(np.abs(clean.mean(0)) < 0.5)
  assert np.all((clean.std(0) > 0.5) & (clean.std(0) < 1.6))
  noise = np.asarray(batch["x"] - batch["clean"]).reshape(-1, 3)
  np.testing.assert_allclose(noise.std(0), 0.1, rtol=0.1)
  again = sample(jax.random.PRNGKey(1), 32)
  np.testing.assert_array_equal(again["x"], batch["x"])   # pure of the key


def test_dataset_mode_slices_one_fixed_trajectory():
  cfg = _config(system="van_der_pol", length=16, mode="dataset")
  data = dynamical_generators.dataset(cfg)
  batch = procedural.make(cfg).sample(jax.random.PRNGKey(0), 4)
  train = data["train"]
  for w in np.asarray(batch["x"]):
    start = int(np.argmin(np.abs(train[:, 0] - w[0, 0]) +
                          np.abs(train[:, 1] - w[0, 1])))
    np.testing.assert_allclose(train[start:start + 16], w, atol=1e-6)
  assert not np.allclose(data["test"][:100], data["train_clean"][:100])


def test_process_noise_changes_the_path():
  sys = dynamical.SYSTEMS["damped_pendulum"]
  a = dynamical.simulate(sys, jax.random.PRNGKey(0), 1, 40)
  b = dynamical.simulate(sys, jax.random.PRNGKey(0), 1, 40,
                         process_noise=0.5)
  np.testing.assert_allclose(a[:, 0], b[:, 0])
  assert float(jnp.abs(a - b).max()) > 1e-2


@pytest.mark.parametrize("kwargs", [{"system": "lorenz"}, {"length": 1},
                                    {"system": "rossler", "dim": 5}])
def test_bad_settings_are_one_line_errors(kwargs):
  with pytest.raises(config_lib.ConfigError, match="config.data.kwargs"):
    procedural.make(_config(**kwargs))

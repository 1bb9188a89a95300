"""Procedural source `dynamical_system`: windows of benchmark trajectories.

`config.data.source = "generator"`, `config.data.name = "dynamical_system"`.
Each batch is `{"x": [n, T, d] observed (noisy, standardised), "clean":
[n, T, d] (the same without observation noise), "mask": [n]}`, a pure
function of `(rng, n)` (see `common.data.procedural`). Two modes:

* `mode="fresh"`: every window is a new trajectory, started from a random
  state of a stored long attractor trajectory (perturbed by `perturb`
  standard deviations) and integrated `burn_in` time units before the kept
  part: unlimited data from the invariant measure.
* `mode="dataset"`: as in GTF's training (one long observed trajectory,
  e.g. 100k steps of Lorenz-63 with 5% noise), windows are random slices
  of a fixed trajectory of `dataset_length` steps drawn once from
  `dataset_seed`; `dataset(config)` returns it (and a held-out test
  trajectory from another seed) for evaluators.

Settings (`config.data.kwargs`): `system` (a name of
`dynamical.SYSTEMS`), `length` (window T), `dt` (0 = the system's),
`dim` (0 = the system's; Lorenz-96 only), `substeps` (RK4 substeps per
saved step), `burn_in` (time units; < 0 = 1.0 in fresh mode), `perturb`,
`obs_noise` (std relative to each dimension's std), `process_noise`,
`standardise` (divide by the attractor's per-dim std after removing its
mean), `mode`, `dataset_length`, `dataset_seed`, `epoch_size`.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from common import config as config_lib
from common.data import dynamical
from common.data import procedural

DEFAULTS = {
    "system": "lorenz63", "length": 200, "dt": 0.0, "dim": 0,
    "substeps": 1, "burn_in": -1.0, "perturb": 0.01, "obs_noise": 0.0,
    "process_noise": 0.0, "standardise": True, "mode": "fresh",
    "dataset_length": 100_000, "dataset_seed": 0, "epoch_size": 4096,
}
RULES = {
    "system": config_lib.one_of(*dynamical.SYSTEMS),
    "length": config_lib.at_least(2, integer=True),
    "dt": config_lib.at_least(0.0),
    "dim": config_lib.at_least(0, integer=True),
    "substeps": config_lib.at_least(1, integer=True),
    "perturb": config_lib.at_least(0.0),
    "obs_noise": config_lib.at_least(0.0),
    "process_noise": config_lib.at_least(0.0),
    "standardise": config_lib.one_of(True, False),
    "mode": config_lib.one_of("fresh", "dataset"),
    "dataset_length": config_lib.at_least(2, integer=True),
    "dataset_seed": config_lib.at_least(0, integer=True),
    "epoch_size": config_lib.at_least(1, integer=True),
}
_BANK_STEPS = 100_000  # reference trajectory (= the default dataset length:
                       # one compilation serves both)
_TEST_SEED_OFFSET = 7919


def _spec(config: Any) -> dict[str, Any]:
  kw = procedural.settings(config, DEFAULTS, RULES)
  system = dynamical.get_system(kw["system"])
  kw["dt"] = float(kw["dt"]) or system.dt
  kw["dim"] = int(kw["dim"]) or system.dim
  if kw["dim"] != system.dim and kw["system"] != "lorenz96":
    raise config_lib.ConfigError(
        f"config.data.kwargs.dim={kw['dim']} is not allowed for "
        f"{kw['system']!r}: only lorenz96 takes a dimension (0 = default)")
  return kw


def _simulate_kw(kw: dict[str, Any]) -> dict[str, Any]:
  return {"dt": kw["dt"], "dim": kw["dim"], "substeps": kw["substeps"]}


@functools.lru_cache(maxsize=16)
def _trajectory_fn(system_name: str, length: int, dt: float, dim: int,
                   substeps: int, process_noise: float):
  """jitted `key -> [length, d]`: one trajectory (compiled once per shape)."""
  system = dynamical.get_system(system_name)
  return jax.jit(lambda k: dynamical.simulate(
      system, k, 1, length, dt=dt, dim=dim, substeps=substeps,
      process_noise=process_noise)[0])


@functools.lru_cache(maxsize=16)
def _reference(system_name: str, dt: float, dim: int, substeps: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(bank [S, d], mean [d], std [d]) of one long attractor trajectory."""
  traj = np.asarray(_trajectory_fn(system_name, _BANK_STEPS, dt, dim,
                                   substeps, 0.0)(jax.random.PRNGKey(0)))
  return traj, traj.mean(0), traj.std(0)


def _observe(kw, rng, clean, mean, std):
  """(observed, clean) after observation noise and standardisation."""
  x = dynamical.add_observation_noise(rng, clean, kw["obs_noise"],
                                      jnp.asarray(std))
  if kw["standardise"]:
    x = dynamical.standardise(x, mean, std)
    clean = dynamical.standardise(clean, mean, std)
  return x, clean


def dataset(config: Any) -> dict[str, np.ndarray]:
  """The fixed train and test trajectories of dataset mode.

  Returns:
    {"train": [L, d] observed, "train_clean": [L, d], "test": [L, d]
    clean (the evaluation reference, as GTF's noise-free test set),
    "mean", "std": [d] attractor statistics used for standardising}.
  """
  kw = _spec(config)
  return _dataset(tuple(sorted(kw.items())))


@functools.lru_cache(maxsize=8)
def _dataset(items: tuple[tuple[str, Any], ...]) -> dict[str, np.ndarray]:
  kw = dict(items)
  _, mean, std = _reference(kw["system"], kw["dt"], kw["dim"],
                            kw["substeps"])
  out = {"mean": mean, "std": std}
  for name, seed in (("train", kw["dataset_seed"]),
                     ("test", kw["dataset_seed"] + _TEST_SEED_OFFSET)):
    k_sim, k_obs = jax.random.split(jax.random.PRNGKey(seed))
    clean = _trajectory_fn(kw["system"], kw["dataset_length"], kw["dt"],
                           kw["dim"], kw["substeps"],
                           float(kw["process_noise"]))(k_sim)
    obs, clean = _observe(kw, k_obs, clean, mean, std)
    if name == "train":
      out["train"], out["train_clean"] = np.asarray(obs), np.asarray(clean)
    else:
      out["test"] = np.asarray(clean)
  return out


@procedural.register_generator("dynamical_system")
def dynamical_system(config: Any) -> procedural.Generator:
  kw = _spec(config)
  system = dynamical.get_system(kw["system"])
  bank, mean, std = _reference(kw["system"], kw["dt"], kw["dim"],
                               kw["substeps"])
  length = int(kw["length"])
  burn = 1.0 if kw["burn_in"] < 0 else float(kw["burn_in"])

  if kw["mode"] == "dataset":
    data = dataset(config)
    train = jnp.asarray(data["train"])
    clean_all = jnp.asarray(data["train_clean"])
    if length > train.shape[0]:
      raise config_lib.ConfigError(
          f"config.data.kwargs.length={length} is not allowed: expected "
          f"<= dataset_length={train.shape[0]}")

    def sample(rng, n):
      starts = jax.random.randint(rng, (n,), 0, train.shape[0] - length + 1)
      cut = jax.vmap(lambda a, s: jax.lax.dynamic_slice_in_dim(
          a, s, length), in_axes=(None, 0))
      return {"x": cut(train, starts), "clean": cut(clean_all, starts),
              "mask": jnp.ones((n,), bool)}
  else:
    bank_j, mean_j, std_j = (jnp.asarray(bank), jnp.asarray(mean),
                             jnp.asarray(std))

    def sample(rng, n):
      k_idx, k_pert, k_sim, k_obs = jax.random.split(rng, 4)
      x0 = bank_j[jax.random.randint(k_idx, (n,), 0, bank_j.shape[0])]
      x0 = x0 + kw["perturb"] * std_j * jax.random.normal(k_pert, x0.shape)
      clean = dynamical.simulate(
          system, k_sim, n, length, burn_in=burn, x0=x0,
          process_noise=kw["process_noise"], **_simulate_kw(kw))
      x, clean = _observe(kw, k_obs, clean, mean_j, std_j)
      return {"x": x, "clean": clean, "mask": jnp.ones((n,), bool)}

  return procedural.Generator(
      sample=sample, example=procedural.example_from(sample), num_classes=0,
      epoch_size=int(kw["epoch_size"]), eval_examples=64)

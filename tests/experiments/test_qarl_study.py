"""The QARL study loop: exact reproducibility, resume, traced numbers.

One tiny study (all four arms, one seed, the smoke sizes) is compiled once
and shared by every test here.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from common import config as config_lib
from experiments.qarl import run


@pytest.fixture(scope="module")
def tiny_config():
  config = config_lib.load_config("experiments/qarl/config.py:point_mass")
  return config_lib.apply_overrides(config, dict(
      run.SMOKE_OVERRIDES, **{"rl.iterations": 3,
                              "qarl.perf_lb": -1e9}))   # teacher moves


def _assert_same(a, b):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_fixed_seed_reproduces_and_resume_matches(tiny_config, tmp_path):
  straight, status = run.Trainer(tiny_config, [0]).train(
      str(tmp_path / "a"), progress=False)
  assert status == "finished" and int(straight.step) == 3
  # The teacher of the QARL arm moved (so it is part of what resumes).
  qarl_run = run.Trainer(tiny_config, [0]).plan.methods.index("qarl")
  assert float(straight.conc[qarl_run]) < tiny_config.qarl.initial_conc

  # Interrupted after two chunks (a checkpoint every chunk), then resumed
  # by a fresh trainer from the checkpoint on disk: the same numbers as the
  # straight run (so a fixed seed also reproduces across trainers).
  cfg = config_lib.apply_overrides(tiny_config,
                                   {"rl.checkpoint_every_chunks": 1})
  part, status = run.Trainer(cfg, [0]).train(str(tmp_path / "c"),
                                             stop_after_chunks=2,
                                             progress=False)
  assert status == "stopped" and int(part.step) == 2
  resumed, status = run.Trainer(cfg, [0]).train(str(tmp_path / "c"),
                                                progress=False)
  assert status == "finished"
  _assert_same(straight, resumed)


def test_temperatures_reach_the_observations_and_numbers_are_traced(
    tiny_config):
  trainer = run.Trainer(tiny_config, [0])
  state = trainer.init_state()
  temps = trainer.temperatures(state)          # [R, K, 2, N]
  chunk = trainer.fns["train_chunk"]
  runs, _ = chunk(state.runs, trainer.hp, jnp.asarray(temps), jnp.int32(0))
  n, h = tiny_config.rl.n_envs, tiny_config.env.horizon
  for r, method in enumerate(trainer.plan.methods):
    # Adversary buffer row t * n + e: env e of the adversary's episode.
    stored = np.asarray(runs.adv_buffer.obs[r, :h * n, -1]).reshape(h, n)
    np.testing.assert_allclose(stored, np.tile(temps[r, 0, 0], (h, 1)))
    stored = np.asarray(runs.prot_buffer.obs[r, :h * n, -1]).reshape(h, n)
    np.testing.assert_allclose(stored, np.tile(temps[r, 0, 1], (h, 1)))
    if method == "qarl":   # one Gamma draw per episode: all different
      assert len(np.unique(temps[r, 0])) == temps[r, 0].size
  # New numbers (learning rates, discount, physics) do not recompile.
  hp = trainer.hp._replace(
      lr_actor=trainer.hp.lr_actor * 0.5, gamma=trainer.hp.gamma * 0.9,
      env_params={k: v * 1.1 for k, v in trainer.hp.env_params.items()})
  size = chunk._cache_size()  # pylint: disable=protected-access
  runs, _ = chunk(runs, hp, jnp.asarray(temps), jnp.int32(1))
  jax.block_until_ready(runs)
  assert chunk._cache_size() == size          # pylint: disable=protected-access

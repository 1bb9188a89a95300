"""The RL protocol on the QARL config: resume, SIGTERM, refusals, logs.

One tiny configuration (the QARL arm, its teacher moving, two seeds run
together as the study engine runs them) is compiled once and shared by
every test here; its sizes are the protocol's smoke sizes, so the
auto-discovered smoke run of `config.py:point_mass` reuses the compilation.
"""

from __future__ import annotations

import json
import os
import shutil
import signal

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from common import cli
from common import config as config_lib
from common.core import checkpoint as checkpoint_lib
from common.core import logging_utils
from common.protocols import rl
from common.protocols import runs

SEEDS = (0, 1)


@pytest.fixture(scope="module")
def tiny_config():
  config = config_lib.load_config("experiments/qarl/config.py:point_mass")
  return config_lib.apply_overrides(config, dict(
      rl.SMOKE_OVERRIDES, **{
          "agent.adversary": "quantal",
          "curriculum.name": "self_paced_gamma",
          "curriculum.self_paced_gamma.n_samples": 4,
          "curriculum.self_paced_gamma.perf_lb": -1e9,  # the teacher moves
          "train.iterations": 3, "train.checkpoint_every_chunks": 1}))


def _dirs(root, seeds=SEEDS):
  return {s: str(root / f"seed_{s}") for s in seeds}


def _final_state(config, workdir):
  s = rl.setup(config, [0])
  ckpt = checkpoint_lib.Checkpointer(workdir)
  try:
    return ckpt.restore_latest(s.abstract_seed_state())
  finally:
    ckpt.close()


def _records(workdir):
  return logging_utils.read_jsonl(os.path.join(workdir, "metrics.jsonl"))


def _assert_same_state(a, b):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


class _Kill(Exception):
  """Stands for a kill -9 between chunks (no save, no clean-up)."""


@pytest.fixture(scope="module")
def straight(tiny_config, tmp_path_factory):
  dirs = _dirs(tmp_path_factory.mktemp("straight"))
  return dirs, rl.run_seeds(tiny_config, dirs, show_progress=False)


def test_kill_sigterm_and_resume_equal_a_straight_run(tiny_config, straight,
                                                      tmp_path):
  dirs_a, results_a = straight
  assert all(r.status == "finished" and r.steps == 3
             for r in results_a.values())
  # The teacher moved, so its state is part of what resumes.
  assert results_a[0].final["curriculum/conc"] < 50.0

  dirs = _dirs(tmp_path)

  def kill_at(n):
    def hook(step):
      if step == n:
        raise _Kill()
    return hook

  def sigterm_at(n):
    def hook(step):
      if step == n:
        os.kill(os.getpid(), signal.SIGTERM)
    return hook

  # Killed after logging iteration 2, before saving it: resumes from 1.
  with pytest.raises(_Kill):
    rl.run_seeds(tiny_config, dirs, show_progress=False, hooks=[kill_at(2)])
  # SIGTERM during iteration 2: saved, "preempted", nothing reported.
  preempted = rl.run_seeds(tiny_config, dirs, show_progress=False,
                           hooks=[sigterm_at(2)])
  assert {r.status for r in preempted.values()} == {"preempted"}
  assert all(r.steps == 2 and not r.final for r in preempted.values())
  assert not os.path.exists(os.path.join(dirs[0], runs.SUMMARY))
  # It resumes only with the seeds it was vmapped with.
  with pytest.raises(runs.WorkdirError, match=r"together with seeds \[0, 1\]"):
    rl.run_seeds(tiny_config, {0: dirs[0]}, show_progress=False)
  # A kill between the two seeds' saves: seed 1 lost iteration 2, so the
  # group resumes from iteration 1, the newest both hold.
  shutil.rmtree(os.path.join(dirs[1], "checkpoints", "2"))
  resumed = rl.run_seeds(tiny_config, dirs, show_progress=False)

  for seed in SEEDS:
    assert resumed[seed].status == "finished"
    assert resumed[seed].final == results_a[seed].final
    _assert_same_state(_final_state(tiny_config, dirs[seed]),
                       _final_state(tiny_config, dirs_a[seed]))
    # One record per (iteration, split), as in the straight run.
    records = _records(dirs[seed])
    keys = [(r["step"], r["split"]) for r in records]
    assert len(keys) == len(set(keys))
    assert records == _records(dirs_a[seed])
  # A finished workdir is served from its summary; a seed whose summary
  # is missing (killed while the group's summaries were written) is
  # evaluated again with its group, to the same numbers and log.
  os.remove(os.path.join(dirs[1], runs.SUMMARY))
  with pytest.raises(runs.WorkdirError, match="together with seeds"):
    rl.run_seeds(tiny_config, {1: dirs[1]}, show_progress=False)
  again = rl.run_seeds(tiny_config, dirs, show_progress=False)
  for seed in SEEDS:
    assert again[seed].final == results_a[seed].final
    assert _records(dirs[seed]) == _records(dirs_a[seed])


def test_a_damaged_checkpoint_is_refused(tiny_config, straight, tmp_path):
  dirs_a, _ = straight
  dirs = _dirs(tmp_path)
  for seed in SEEDS:   # finished runs whose summaries were lost
    shutil.copytree(dirs_a[seed], dirs[seed])
    os.remove(os.path.join(dirs[seed], runs.SUMMARY))
  step_dir = os.path.join(dirs[1], "checkpoints", "3")
  files = [os.path.join(root, f) for root, _, fs in os.walk(step_dir)
           for f in fs]
  largest = max(files, key=os.path.getsize)
  with open(largest, "r+b") as f:
    f.seek(os.path.getsize(largest) // 2)
    f.write(b"\x00garbage\xff")
  with pytest.raises(checkpoint_lib.CheckpointError, match="corrupt"):
    rl.run_seeds(tiny_config, dirs, show_progress=False)


@pytest.mark.parametrize("override", ["agent.lr_actor=0.5",
                                      "agent.gamma=0.9",
                                      "curriculum.self_paced_gamma.max_kl=1.0"])
def test_a_changed_setting_is_refused(tiny_config, tmp_path, override):
  dirs = _dirs(tmp_path)
  for seed, d in dirs.items():   # a run in progress: config, no summary
    os.makedirs(d)
    runs.write_config(d, config_lib.apply_overrides(tiny_config,
                                                    {"seed": seed}))
  changed = config_lib.apply_overrides(tiny_config, [override])
  key = override.split("=")[0]
  with pytest.raises(runs.WorkdirError, match=key):
    rl.run_seeds(changed, dirs, show_progress=False)


def test_another_seed_and_a_finished_other_config_are_refused(
    tiny_config, straight):
  dirs_a, _ = straight
  with pytest.raises(runs.WorkdirError, match="seed: saved 0, now 1"):
    rl.run_seeds(tiny_config, {1: dirs_a[0]}, show_progress=False)
  changed = config_lib.apply_overrides(tiny_config, {"agent.tau": 0.01})
  with pytest.raises(runs.WorkdirError, match="agent.tau"):
    rl.run_seeds(changed, dirs_a, show_progress=False)


def test_a_key_the_protocol_does_not_read_fails_with_the_valid_keys(
    tiny_config, capsys):
  with pytest.raises(config_lib.ConfigError,
                     match="valid keys here: agent, curriculum, env, eval"):
    config_lib.apply_overrides(tiny_config, ["optim.learning_rate=0.1"])
  with pytest.raises(SystemExit) as exit_info:
    cli.main(["regjax", "run", "qarl", "--config.optim.learning_rate=0.1"])
  assert exit_info.value.code == cli.EXIT_USAGE
  assert "optim" in capsys.readouterr().err


@pytest.mark.parametrize("overrides,match", [
    ({"agent.gamma": 1.5}, r"agent.gamma=1.5 is not allowed"),
    ({"agent.adversary": "quantal", "curriculum.name": "none"},
     "quantal adversary reads its temperature"),
    ({"train.iterations": 5, "train.chunk_iterations": 2}, "multiple"),
    ({"curriculum.self_paced_gamma.n_samples": 100}, "n_samples=100"),
    ({"env.params.mas": 1.0}, "unknown config key"),
])
def test_validation_names_the_field(tiny_config, overrides, match):
  with pytest.raises(config_lib.ConfigError, match=match):
    rl.validate(config_lib.apply_overrides(tiny_config, overrides))


def test_temperatures_reach_the_observations_and_numbers_are_traced(
    tiny_config):
  s = rl.setup(tiny_config, SEEDS)
  state = s.init_state()
  n, h = tiny_config.agent.n_envs, tiny_config.env.horizon
  temps = s.curriculum.temperatures(state.curriculum, s.seeds, 0, 1, n)
  assert temps.shape == (2, 1, 2, n)
  assert len(np.unique(temps)) == temps.size   # one Gamma draw per episode
  # A chunk's draws are a function of (seed, iteration), not of the group.
  alone = rl.setup(tiny_config, [1]).curriculum.temperatures(
      {k: v[1:] for k, v in state.curriculum.items()}, [1], 0, 1, n)
  np.testing.assert_array_equal(alone[0], temps[1])
  chunk = s.fns["train_chunk"]
  runs_, _ = chunk(state.runs, s.hp, jnp.asarray(temps), jnp.int32(0))
  for r in range(2):
    # Buffer row t * n + e: env e of the adversary's / protagonist's episode.
    stored = np.asarray(runs_.adv_buffer.obs[r, :h * n, -1]).reshape(h, n)
    np.testing.assert_allclose(stored, np.tile(temps[r, 0, 0], (h, 1)))
    stored = np.asarray(runs_.prot_buffer.obs[r, :h * n, -1]).reshape(h, n)
    np.testing.assert_allclose(stored, np.tile(temps[r, 0, 1], (h, 1)))
  # New numbers (learning rates, discount, physics) do not recompile.
  hp = s.hp._replace(lr_actor=s.hp.lr_actor * 0.5, gamma=s.hp.gamma * 0.9,
                     env_params={k: v * 1.1
                                 for k, v in s.hp.env_params.items()})
  size = chunk._cache_size()  # pylint: disable=protected-access
  runs_, _ = chunk(runs_, hp, jnp.asarray(temps), jnp.int32(1))
  jax.block_until_ready(runs_)
  assert chunk._cache_size() == size          # pylint: disable=protected-access


def test_results_are_flat_metrics_with_the_grid(straight):
  _, results = straight
  final = results[0].final
  grid = np.asarray([[final[f"grid/{i}/{j}"] for j in range(11)]
                     for i in range(11)])
  assert final["grid_mean"] == pytest.approx(grid.mean(), rel=1e-6)
  assert final["grid_worst"] == pytest.approx(grid.min(), rel=1e-6)
  for key in ("return_no_adversary", "return_vs_own_adversary",
              "return_vs_worst_adversary", "own_temperature"):
    assert np.isfinite(final[key])
  summary = json.loads(open(os.path.join(results[0].workdir,
                                         runs.SUMMARY)).read())
  assert summary["final"] == final

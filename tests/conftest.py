"""Shared fixtures: a hermetic TFDS data dir, rng, tiny configs."""

from __future__ import annotations

import os
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
  sys.path.insert(0, REPO_ROOT)


@pytest.fixture(scope="session", autouse=True)
def tfds_data_dir(tmp_path_factory):
  """In-repo datasets are built once per session in a temp dir, never ~."""
  path = str(tmp_path_factory.mktemp("tfds"))
  old = os.environ.get("TFDS_DATA_DIR")
  os.environ["TFDS_DATA_DIR"] = path
  yield path
  if old is None:
    os.environ.pop("TFDS_DATA_DIR", None)
  else:
    os.environ["TFDS_DATA_DIR"] = old


@pytest.fixture(scope="session", autouse=True)
def jax_compilation_cache(tmp_path_factory):
  """Tests build the same steps many times: share compilations (and with
  the subprocesses of CLI / multi-device tests, via REGJAX_JAX_CACHE)."""
  from common.core import sharding  # pylint: disable=g-import-not-at-top
  path = str(tmp_path_factory.mktemp("jax_cache"))
  os.environ["REGJAX_JAX_CACHE"] = path
  sharding.enable_compilation_cache(path)
  yield path


@pytest.fixture
def rng():
  import jax  # pylint: disable=g-import-not-at-top
  return jax.random.PRNGKey(0)


def tiny_config(**overrides):
  """The digits PS-KD config shrunk to a few fast steps."""
  from common import config as config_lib  # pylint: disable=g-import-not-at-top
  config = config_lib.load_config("experiments/ps_kd/config.py:digits")
  base = {"train.num_epochs": 2, "train.batch_size": 32,
          "train.eval_batch_size": 120, "train.log_every_steps": 1,
          "train.eval_every_epochs": 1, "train.checkpoint_every_steps": 10,
          "train.tensorboard": False, "schedule.boundaries_epochs": (1.0,)}
  base.update(overrides)
  return config_lib.apply_overrides(config, base)


def sigterm_at(step: int):
  """A loop hook that sends this process SIGTERM after `step` steps (a
  preemption at a chosen point)."""
  import signal  # pylint: disable=g-import-not-at-top

  def hook(done: int) -> None:
    if done == step:
      os.kill(os.getpid(), signal.SIGTERM)
  return hook


def blobs_config(**overrides):
  """A generator-sourced config (`gaussian_blobs`, MLP): batches drawn on
  device from (seed, step)."""
  from common import config as config_lib  # pylint: disable=g-import-not-at-top
  from common.protocols import supervised  # pylint: disable=g-import-not-at-top
  c = supervised.base_config()
  c.experiment = "test"
  c.data.update(name="gaussian_blobs", source="generator", input_key="x",
                preprocess="none")
  c.model.name = "mlp"
  c.model.kwargs = dict(hidden_sizes=(32,))
  c.optim.update(name="sgd", momentum=0.9, nesterov=True, weight_decay=5e-4)
  c.schedule.update(name="cosine", learning_rate=0.1)
  c.train.update(batch_size=64, steps=40, eval_batch_size=128,
                 log_every_steps=1, eval_every_epochs=0,
                 checkpoint_every_steps=10, tensorboard=False)
  c.lock()
  return config_lib.apply_overrides(c, overrides)


def run_on_cpu_devices(script: str, devices: int, *args: str) -> dict:
  """Runs `script` (Python source) in a fresh process with `devices` fake
  CPU devices (the count is fixed when JAX starts) and returns the JSON
  object its last stdout line prints. `args` become `sys.argv[1:]`."""
  import json  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  env = dict(os.environ)
  env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                      f" --xla_force_host_platform_device_count={devices}")
  env["JAX_PLATFORMS"] = "cpu"
  out = subprocess.run([sys.executable, "-c", script, *args], env=env,
                       capture_output=True, text=True, timeout=600,
                       check=False, cwd=REPO_ROOT)
  assert out.returncode == 0, out.stderr[-3000:]
  return json.loads(out.stdout.strip().splitlines()[-1])


_TRAIN_SCRIPT = """
import json, sys
import jax
sys.path.insert(0, {root!r})
from common import config as config_lib
from common.core import logging_utils
from common.protocols import supervised
from tests.conftest import blobs_config, tiny_config
config = {config_expr}
result = supervised.train(config, sys.argv[1], show_progress=False)
losses = [r["loss"] for r in logging_utils.read_jsonl(
    sys.argv[1] + "/metrics.jsonl") if r["split"] == "train"]
print(json.dumps({{"devices": jax.device_count(), "losses": losses,
                  "eval": result.final}}))
"""


def train_on_cpu_devices(config_expr: str, devices: int,
                         workdir: str) -> dict:
  """Trains with the shared loop in a fresh process on `devices` CPU devices.

  Args:
    config_expr: a Python expression building the config; `config_lib`
      (common.config), `tiny_config` and `blobs_config` are in scope.
    devices: the fake CPU device count.
    workdir: the run's folder.

  Returns:
    `{"devices": n, "losses": [train loss per logged step], "eval": final
    eval metrics}`.
  """
  return run_on_cpu_devices(
      _TRAIN_SCRIPT.format(root=REPO_ROOT, config_expr=config_expr), devices,
      workdir)


def run_on_one_and_eight_devices(script: str, tmp_path_factory
                                 ) -> tuple[dict, dict]:
  """`run_on_cpu_devices(script, n, workdir)` for n = 1 and 8, both at once
  (compilation dominates, and CI has 2 cores); each gets its own workdir
  as `sys.argv[1]`. Returns the two JSON results (1 device, 8 devices)."""
  from concurrent import futures  # pylint: disable=g-import-not-at-top
  with futures.ThreadPoolExecutor(2) as pool:
    one, eight = pool.map(
        lambda n: run_on_cpu_devices(script, n, str(tmp_path_factory.mktemp(
            f"devices_{n}"))), (1, 8))
  assert one["devices"] == 1 and eight["devices"] == 8
  return one, eight

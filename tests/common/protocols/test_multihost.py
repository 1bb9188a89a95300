"""Two processes on localhost through `jax.distributed` (CPU, gloo).

* 2 processes x 1 device train the same model as 1 process x 2 devices, bit
  for bit (each host feeds its block of every global batch);
* a SIGTERM that reaches only one process stops both at the same step with
  a checkpoint, and rerunning both finishes with the straight run's result.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT
from tests.conftest import run_on_cpu_devices

pytestmark = pytest.mark.slow

_SCRIPT = """
import json, os, signal, sys
sys.path.insert(0, {root!r})
from common.core import sharding
sharding.maybe_initialize_distributed()
import jax
from common.core import logging_utils
from common.protocols import supervised
from tests.conftest import blobs_config, tiny_config
config = {config_expr}
kill_at = int(os.environ.get("KILL_AT", "0"))

def hook(step):
  if kill_at and step == kill_at and jax.process_index() == 0:
    os.kill(os.getpid(), signal.SIGTERM)   # only process 0 is preempted

result = supervised.train(config, sys.argv[1], hooks=[hook],
                          show_progress=False)
path = os.path.join(sys.argv[1], "metrics.jsonl")
losses = ([r["loss"] for r in logging_utils.read_jsonl(path)
           if r["split"] == "train"] if jax.process_index() == 0 else [])
print(json.dumps({{"process": jax.process_index(),
                  "processes": jax.process_count(),
                  "status": result.status, "steps": result.steps,
                  "losses": losses, "final": result.final}}))
"""

_CONFIG = ('blobs_config(**{"train.steps": 16, '
           '"train.sync_preemption_every_steps": 4})')
_TFDS = ('tiny_config(**{"train.steps": 6, "train.batch_size": 32, '
         '"train.eval_batch_size": 120})')


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _two_processes(config_expr: str, workdir: str, kill_at: int = 0
                   ) -> list[dict]:
  script = _SCRIPT.format(root=REPO_ROOT, config_expr=config_expr)
  port = _free_port()
  procs = []
  for i in range(2):
    env = dict(os.environ, JAX_PLATFORMS="cpu", REGJAX_DISTRIBUTED="1",
               JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
               JAX_NUM_PROCESSES="2", JAX_PROCESS_ID=str(i),
               KILL_AT=str(kill_at),
               XLA_FLAGS="--xla_force_host_platform_device_count=1")
    procs.append(subprocess.Popen([sys.executable, "-c", script, workdir],
                                  env=env, cwd=REPO_ROOT, text=True,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE))
  out = []
  for p in procs:
    stdout, stderr = p.communicate(timeout=600)
    assert p.returncode == 0, stderr[-3000:]
    out.append(json.loads(stdout.strip().splitlines()[-1]))
  return sorted(out, key=lambda r: r["process"])


def _one_process_two_devices(config_expr: str, workdir: str) -> dict:
  script = _SCRIPT.format(root=REPO_ROOT, config_expr=config_expr)
  return run_on_cpu_devices(script, 2, workdir)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
  """The generator config run straight by two processes."""
  return _two_processes(_CONFIG, str(tmp_path_factory.mktemp("straight")))


def _check_equal(multi, single):
  assert [r["processes"] for r in multi] == [2, 2]
  assert multi[0]["losses"] == single["losses"]     # bit for bit
  assert multi[0]["final"] == multi[1]["final"] == single["final"]


def test_two_processes_equal_one_process_with_two_devices(tmp_path,
                                                          straight):
  _check_equal(straight, _one_process_two_devices(_CONFIG, str(tmp_path)))


def test_two_hosts_feeding_their_blocks_of_a_tfds_batch(tmp_path):
  _check_equal(_two_processes(_TFDS, str(tmp_path / "multi")),
               _one_process_two_devices(_TFDS, str(tmp_path / "single")))


def test_sigterm_on_one_process_stops_both_at_the_same_step(tmp_path,
                                                            straight):
  first = _two_processes(_CONFIG, str(tmp_path / "run"), kill_at=6)
  # Process 1 never got a signal; both agree at the next sync point (8).
  assert [r["status"] for r in first] == ["preempted", "preempted"]
  assert [r["steps"] for r in first] == [8, 8]
  resumed = _two_processes(_CONFIG, str(tmp_path / "run"))
  assert [r["status"] for r in resumed] == ["finished", "finished"]
  assert resumed[0]["final"] == straight[0]["final"]
  assert resumed[0]["losses"] == straight[0]["losses"]

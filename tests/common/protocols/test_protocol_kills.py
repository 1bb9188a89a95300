"""kill -9 on the protocols with loops of their own (TTA streams, RL).

Each run is a fresh process that SIGKILLs itself at a chosen point (no
handler, no clean-up); rerunning the same command must end with exactly
the metrics of a run that was never interrupted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow

_PRELUDE = """
import json, os, signal, sys
sys.path.insert(0, {root!r})
from common import config as config_lib
from common.core import checkpoint
def die(*a, **k):
  os.kill(os.getpid(), signal.SIGKILL)
kill = os.environ.get("KILL", "")
calls = [0]
def kill_on_call(n):
  def wrap(fn):
    def inner(*a, **k):
      calls[0] += 1
      if calls[0] == n:
        die()
      return fn(*a, **k)
    return inner
  return wrap
"""

_TTA = _PRELUDE + """
from common.protocols import tta, tta_loop
config = config_lib.apply_overrides(
    config_lib.load_config("experiments/eata/config.py:digits_c"), {{
        "train.steps": 3, "adapt.max_batches": 2, "adapt.init_size": 120,
        "adapt.corruptions": ("gaussian_noise", "shot_noise"),
        "adapt.protocols": ("reset", "lifelong"), "adapt.rounds": 3,
        "adapt.source_dir": sys.argv[2]}})
if kill == "checkpoint":       # inside the save of the round-1 boundary
  checkpoint.Checkpointer.save = kill_on_call(1)(checkpoint.Checkpointer.save)
elif kill == "mid_round":      # adapting round 2's second corruption
  tta_loop.Adapter.adapt = kill_on_call(6)(tta_loop.Adapter.adapt)
result = tta.run(config, sys.argv[1], show_progress=False)
print(json.dumps({{"status": result.status, "final": result.final}}))
"""

_RL = _PRELUDE + """
from common.protocols import rl
config = config_lib.apply_overrides(
    config_lib.load_config("experiments/qarl/config.py:point_mass"),
    dict(rl.SMOKE_OVERRIDES, **{{"train.iterations": 3,
                                 "train.checkpoint_every_chunks": 1}}))
if kill == "checkpoint":       # inside seed 1's save of iteration 2
  checkpoint.Checkpointer.save = kill_on_call(4)(checkpoint.Checkpointer.save)
dirs = {{s: os.path.join(sys.argv[1], f"seed_{{s}}") for s in (0, 1)}}
results = rl.run_seeds(config, dirs, show_progress=False)
print(json.dumps({{"status": sorted({{r.status for r in results.values()}}),
                  "final": {{str(s): r.final for s, r in results.items()}}}}))
"""


def _run(script: str, *args: str, kill: str = "") -> tuple[int, dict | None]:
  out = subprocess.run(
      [sys.executable, "-c", script.format(root=REPO_ROOT), *args],
      env=dict(os.environ, JAX_PLATFORMS="cpu", KILL=kill), cwd=REPO_ROOT,
      capture_output=True, text=True, timeout=900, check=False)
  if out.returncode:
    assert out.returncode == -9, out.stderr[-3000:]
    return out.returncode, None
  return 0, json.loads(out.stdout.strip().splitlines()[-1])


def test_tta_killed_in_a_checkpoint_and_mid_round_resumes_exactly(tmp_path):
  source = str(tmp_path / "source")
  code, straight = _run(_TTA, str(tmp_path / "straight"), source)
  assert code == 0 and straight["status"] == "finished"
  work = str(tmp_path / "run")
  assert _run(_TTA, work, source, kill="checkpoint")[0] == -9
  assert _run(_TTA, work, source, kill="mid_round")[0] == -9
  code, resumed = _run(_TTA, work, source)
  assert code == 0 and resumed == straight


def test_rl_killed_between_two_seeds_saves_resumes_exactly(tmp_path):
  """Seed 0 holds iteration 2, seed 1 only 1: the group resumes from 1.
  (A kill after a log and before its save: tests/experiments/
  test_qarl_study.py.)"""
  code, straight = _run(_RL, str(tmp_path / "straight"))
  assert code == 0 and straight["status"] == ["finished"]
  work = str(tmp_path / "run")
  assert _run(_RL, work, kill="checkpoint")[0] == -9
  code, resumed = _run(_RL, work)
  assert code == 0 and resumed == straight

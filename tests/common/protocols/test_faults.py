"""Fault injection on the shared loop: nothing lost, nothing silently wrong.

* kill -9 at points of a run (mid-training, inside a checkpoint write,
  between a checkpoint and its checksums, in the final evaluation, before
  the summary), then rerun: the same losses and final metrics as a run that
  was never interrupted;
* corrupted, truncated and missing checkpoint files are refused with the
  file named; the previous verified checkpoint is used only when asked;
* a state that turned non-finite is never saved as "last good";
* a resume with any changed setting is refused; logging-only settings may
  change.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

from common import config as config_lib
from common.core import checkpoint as checkpoint_lib
from common.core import logging_utils
from common.core import method as method_lib
from common.protocols import runs
from common.protocols import supervised
from tests.conftest import REPO_ROOT
from tests.conftest import blobs_config
from tests.conftest import sigterm_at

_CONFIG = {"train.steps": 30, "train.checkpoint_every_steps": 10,
           "train.keep_checkpoints": 2}

# Runs the loop in a fresh process; KILL names where it kills itself with
# SIGKILL (no handler, no cleanup: what the OOM killer or a lost host does).
_SCRIPT = """
import json, os, signal, sys
sys.path.insert(0, {root!r})
from common.core import checkpoint, logging_utils
from common.protocols import runs, supervised
from tests.conftest import blobs_config
config = blobs_config(**{config!r})
where = os.environ.get("KILL", "")

def die(*a, **k):
  os.kill(os.getpid(), signal.SIGKILL)

def at_step(n):
  return lambda step: die() if step == n else None

hooks = []
if where == "mid_training":
  hooks = [at_step(13)]
elif where == "checkpoint_write":   # inside orbax's save of step 20
  save = checkpoint.ocp.CheckpointManager.save
  def killing_save(self, step, *a, **k):
    if step == 20:
      die()
    return save(self, step, *a, **k)
  checkpoint.ocp.CheckpointManager.save = killing_save
elif where == "before_checksums":   # step 20 written, checksums not yet
  digests = checkpoint.file_digests
  def killing_digests(folder):
    if folder.endswith(os.sep + "20"):
      die()
    return digests(folder)
  checkpoint.file_digests = killing_digests
elif where == "final_eval":
  evaluate = supervised.evaluate
  def killing_eval(s, state):
    if int(state.step) == 30:
      die()
    return evaluate(s, state)
  supervised.evaluate = killing_eval
elif where == "before_summary":
  runs.write_summary = die
result = supervised.train(config, sys.argv[1], hooks=hooks,
                          show_progress=False)
losses = [r["loss"] for r in logging_utils.read_jsonl(
    os.path.join(sys.argv[1], "metrics.jsonl")) if r["split"] == "train"]
print(json.dumps({{"status": result.status, "losses": losses,
                  "final": result.final}}))
"""


def _run(workdir: str, kill: str = "") -> tuple[int, dict | None]:
  env = dict(os.environ, JAX_PLATFORMS="cpu", KILL=kill)
  out = subprocess.run(
      [sys.executable, "-c", _SCRIPT.format(root=REPO_ROOT, config=_CONFIG),
       workdir], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
      timeout=600, check=False)
  if out.returncode:
    return out.returncode, None
  return 0, json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
  code, result = _run(str(tmp_path_factory.mktemp("straight")))
  assert code == 0
  return result


@pytest.mark.parametrize("kill", ["mid_training", "checkpoint_write",
                                  "before_checksums", "final_eval",
                                  "before_summary"])
def test_kill_9_then_rerun_gives_the_uninterrupted_result(tmp_path, straight,
                                                          kill):
  code, _ = _run(str(tmp_path), kill)
  assert code == -9
  assert not os.path.exists(tmp_path / "summary.json")
  code, resumed = _run(str(tmp_path))
  assert code == 0, "the rerun failed"
  assert resumed["final"] == straight["final"]
  assert resumed["losses"] == straight["losses"]


# ------------------------------------------------ corrupted checkpoints
@pytest.fixture
def trained(tmp_path):
  """A finished 30-step run with checkpoints 20 and 30, summary removed
  (as if killed before it), so a rerun must read the checkpoint."""
  config = blobs_config(**_CONFIG)
  supervised.train(config, str(tmp_path), show_progress=False)
  os.remove(tmp_path / "summary.json")
  return config, tmp_path


def _largest_file(folder):
  files = [os.path.join(r, f) for r, _, fs in os.walk(folder) for f in fs]
  return max(files, key=os.path.getsize)


def _flip_one_byte(path):
  with open(path, "r+b") as f:
    f.seek(os.path.getsize(path) // 2)
    byte = f.read(1)
    f.seek(-1, 1)
    f.write(bytes([byte[0] ^ 0x01]))


@pytest.mark.parametrize("damage", ["garbage", "one_byte", "truncate",
                                    "missing_metadata"])
def test_damaged_checkpoint_is_refused_naming_the_file(trained, damage):
  config, workdir = trained
  step_dir = workdir / "checkpoints" / "30"
  if damage == "garbage":
    path = _largest_file(step_dir)
    with open(path, "r+b") as f:
      f.write(b"\xff" * 64)
  elif damage == "one_byte":
    path = _largest_file(step_dir)
    _flip_one_byte(path)
  elif damage == "truncate":
    path = _largest_file(step_dir)
    with open(path, "r+b") as f:
      f.truncate(os.path.getsize(path) // 2)
  else:
    path = step_dir / "default" / "_METADATA"
    os.remove(path)
  with pytest.raises(checkpoint_lib.CheckpointError) as e:
    supervised.train(config, str(workdir), show_progress=False)
  message = str(e.value)
  assert "step 30" in message and os.path.basename(path) in message
  assert "--fallback_checkpoint" in message
  assert os.path.isdir(step_dir)      # nothing deleted


def test_fallback_only_when_asked_resumes_from_the_previous_verified(
    trained, monkeypatch):
  config, workdir = trained
  reference = supervised.train(config, str(workdir / "ref"),
                               show_progress=False)
  _flip_one_byte(_largest_file(workdir / "checkpoints" / "30"))
  monkeypatch.setenv("REGJAX_CHECKPOINT_FALLBACK", "1")
  result = supervised.train(config, str(workdir), show_progress=False)
  assert result.final == reference.final   # retrained 20 -> 30 exactly
  assert os.path.isdir(workdir / "checkpoints" / "corrupt" / "30")


def test_checkpoint_without_checksums_is_used(trained):
  config, workdir = trained
  os.remove(workdir / "checkpoints" / "integrity" / "30.json")
  result = supervised.train(config, str(workdir), show_progress=False)
  assert result.status == "finished" and result.steps == 30


def test_non_finite_state_is_never_saved_as_the_last_good_one(tmp_path):
  """The loss of step 12 is finite, the parameters after it are not."""
  base = method_lib.get_method("cross_entropy", {"label_smoothing": 0.0})

  def poison(hp, ctx, params, method_state, rng):
    del hp, rng
    bad = jax.tree.map(lambda p: jnp.where(ctx.step == 11, jnp.nan, p),
                       params)
    return bad, method_state

  method = base._replace(after_update=poison)
  config = blobs_config(**{"train.steps": 20,
                           "train.checkpoint_every_steps": 6})
  with pytest.raises(FloatingPointError, match="step 12") as e:
    supervised.train(config, str(tmp_path), method=method,
                     show_progress=False)
  assert "last checkpoint" in str(e.value) or "step 6" in str(e.value)
  ckpt = checkpoint_lib.Checkpointer(str(tmp_path))
  assert ckpt.latest_step() == 6
  ckpt.close()


# --------------------------------------------------- changed settings
_CHANGES = {"seed": 1, "data.kwargs": {"num_classes": 4},
            "model.kwargs": {"hidden_sizes": (8,)},
            "method.cross_entropy.label_smoothing": 0.1,
            "optim.momentum": 0.5, "schedule.learning_rate": 0.05,
            "train.batch_size": 32, "train.steps": 31, "eval.name": "none"}
_MAY_CHANGE = {"train.log_every_steps": 5, "train.checkpoint_every_steps": 7,
               "train.tensorboard": True, "data.data_dir": "/elsewhere"}


@pytest.fixture(scope="module")
def preempted(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("preempted")
  config = blobs_config(**_CONFIG)
  assert supervised.train(config, str(workdir), hooks=[sigterm_at(10)],
                          show_progress=False).status == "preempted"
  return config, workdir


@pytest.mark.parametrize("key", sorted(_CHANGES))
def test_resume_with_a_changed_setting_is_refused(preempted, key):
  config, workdir = preempted
  changed = config_lib.apply_overrides(config, {key: _CHANGES[key]})
  with pytest.raises(runs.WorkdirError, match=key.split(".")[0]):
    supervised.train(changed, str(workdir), show_progress=False)


def test_resume_with_logging_settings_changed_is_allowed(preempted):
  config, workdir = preempted
  runs.check_same_config(str(workdir), config_lib.apply_overrides(
      config, _MAY_CHANGE), has_checkpoint=True)


def test_missing_config_json_with_checkpoints_is_refused(tmp_path):
  config = blobs_config(**_CONFIG)
  supervised.train(config, str(tmp_path), hooks=[sigterm_at(10)],
                   show_progress=False)
  os.remove(tmp_path / "config.json")
  with pytest.raises(runs.WorkdirError, match="no config.json"):
    supervised.train(config, str(tmp_path), show_progress=False)


def test_truncated_last_log_line_does_not_block_resume(tmp_path):
  config = blobs_config(**_CONFIG)
  supervised.train(config, str(tmp_path), hooks=[sigterm_at(10)],
                   show_progress=False)
  with open(tmp_path / "metrics.jsonl", "a") as f:
    f.write('{"step": 11, "split": "tra')     # killed mid-write
  result = supervised.train(config, str(tmp_path), show_progress=False)
  steps = [r["step"] for r in logging_utils.read_jsonl(
      str(tmp_path / "metrics.jsonl")) if r["split"] == "train"]
  assert result.status == "finished" and steps == sorted(set(steps))

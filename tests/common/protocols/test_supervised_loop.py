"""Host loop: resume equality, SIGTERM, non-finite abort, bad checkpoints."""

from __future__ import annotations

import os

import chex
import numpy as np
import pytest

from common.core import checkpoint as checkpoint_lib
from common.core import logging_utils
from common.protocols import build
from common.protocols import runs
from common.protocols import supervised as loop
from tests.conftest import sigterm_at
from tests.conftest import blobs_config
from tests.conftest import tiny_config


def _train_losses(workdir):
  return {r["step"]: r["loss"] for r in logging_utils.read_jsonl(
      os.path.join(workdir, "metrics.jsonl")) if r["split"] == "train"}


def _final_state(config, workdir):
  s = build.setup(config)
  return checkpoint_lib.Checkpointer(workdir).restore_latest(s.abstract_state)


def test_interrupted_run_resumes_to_identical_result(tmp_path):
  config = tiny_config()   # PS-KD: the table must survive the restart too
  straight = loop.train(config, str(tmp_path / "a"), show_progress=False)
  assert straight.status == "finished"


  first = loop.train(config, str(tmp_path / "b"), hooks=[sigterm_at(30)],
                     show_progress=False)
  assert first.status == "preempted" and first.steps == 30
  resumed = loop.train(config, str(tmp_path / "b"), show_progress=False)
  assert resumed.status == "finished"
  assert resumed.steps == straight.steps
  assert resumed.final == straight.final
  assert _train_losses(tmp_path / "b") == _train_losses(tmp_path / "a")
  chex.assert_trees_all_equal(_final_state(config, str(tmp_path / "a")),
                              _final_state(config, str(tmp_path / "b")))
  # Rerunning a finished run does no work and returns the same numbers.
  again = loop.train(config, str(tmp_path / "a"), show_progress=False)
  assert again.final == straight.final


def test_kill_after_last_checkpoint_reevaluates_the_final_state(tmp_path):
  """A run killed between its last checkpoint and its summary must not
  report the last periodic evaluation as final (issue: stale result)."""
  config = tiny_config(**{"train.checkpoint_every_steps": 22})
  straight = loop.train(config, str(tmp_path), show_progress=False)
  periodic = [r for r in runs.eval_history(str(tmp_path))
              if r["step"] < straight.steps]
  assert periodic[-1]["nll"] != straight.final["nll"]
  os.remove(tmp_path / "summary.json")   # as if killed before writing it
  again = loop.train(config, str(tmp_path), show_progress=False)
  assert again.final == straight.final
  assert os.path.exists(tmp_path / "summary.json")


def test_finished_result_of_another_config_is_refused(tmp_path):
  loop.train(tiny_config(**{"train.steps": 3}), str(tmp_path),
             show_progress=False)
  with pytest.raises(runs.WorkdirError, match="schedule.learning_rate"):
    loop.train(tiny_config(**{"train.steps": 3,
                              "schedule.learning_rate": 0.05}),
               str(tmp_path), show_progress=False)


def test_non_finite_loss_aborts_naming_step_and_metric(tmp_path):
  config = tiny_config(**{"schedule.learning_rate": 1e12,
                          "schedule.name": "constant"})
  # The gradient norm usually overflows one step before the loss does.
  with pytest.raises(loop.NonFiniteError,
                     match=r"metric '(loss|grad_norm|param_norm)'.*at step \d+"):
    loop.train(config, str(tmp_path), show_progress=False)


def test_corrupt_checkpoint_raises_instead_of_fresh_start(tmp_path):
  config = tiny_config(**{"train.steps": 10})
  loop.train(config, str(tmp_path), show_progress=False)
  os.remove(tmp_path / "summary.json")   # make the loop read the checkpoint
  ckpt_dir = tmp_path / "checkpoints" / "10"
  damaged = 0
  for root, _, files in os.walk(ckpt_dir):
    for name in files:
      path = os.path.join(root, name)
      if os.path.getsize(path) > 0:
        with open(path, "wb") as f:
          f.write(b"\x00garbage")
        damaged += 1
  assert damaged
  with pytest.raises(checkpoint_lib.CheckpointError, match=str(ckpt_dir)):
    loop.train(config, str(tmp_path), show_progress=False)


def test_incompatible_checkpoint_names_the_mismatch(tmp_path):
  config = tiny_config(**{"train.steps": 4})
  loop.train(config, str(tmp_path), show_progress=False)
  other = build.setup(tiny_config(**{"train.steps": 4, "model.name": "mlp", "model.kwargs": {}}))
  with pytest.raises(checkpoint_lib.CheckpointError, match="does not match"):
    checkpoint_lib.Checkpointer(str(tmp_path)).restore_latest(
        other.abstract_state)
  # Through the loop, the changed config is caught before any array is read.
  os.remove(tmp_path / "summary.json")
  with pytest.raises(runs.WorkdirError, match="model.name"):
    loop.train(tiny_config(**{"train.steps": 4, "model.name": "mlp", "model.kwargs": {}}),
               str(tmp_path), show_progress=False)


def test_writes_metrics_tensorboard_and_summary(tmp_path):
  config = tiny_config(**{"train.steps": 6, "train.tensorboard": True,
                          "train.log_norms": True})
  result = loop.train(config, str(tmp_path), show_progress=False)
  records = logging_utils.read_jsonl(str(tmp_path / "metrics.jsonl"))
  train = [r for r in records if r["split"] == "train"]
  assert [r["step"] for r in train] == [1, 2, 3, 4, 5, 6]
  assert {"loss", "learning_rate", "grad_norm", "method/alpha"} <= set(train[0])
  assert os.listdir(tmp_path / "tensorboard")
  assert os.path.exists(tmp_path / "summary.json")
  for key in ("error", "nll", "ece", "aurc"):
    assert np.isfinite(result.final[key])
  assert result.final["num_examples"] == 360   # the whole digits test split


def test_generator_source_resumes_bit_exactly(tmp_path):
  config = blobs_config()
  straight = loop.train(config, str(tmp_path / "a"), show_progress=False)


  first = loop.train(config, str(tmp_path / "b"), hooks=[sigterm_at(17)],
                     show_progress=False)
  assert first.status == "preempted" and first.steps == 17
  resumed = loop.train(config, str(tmp_path / "b"), show_progress=False)
  assert resumed.final == straight.final
  assert _train_losses(tmp_path / "b") == _train_losses(tmp_path / "a")

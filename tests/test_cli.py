"""The `regjax` command: list, run by id, clear errors."""

from __future__ import annotations

import os
import subprocess
import sys

from common import papers
from tests.conftest import REPO_ROOT


def _regjax(*args, cwd=REPO_ROOT):
  return subprocess.run([sys.executable, "-m", "common", *args], cwd=cwd,
                        capture_output=True, text=True, timeout=600,
                        env=dict(os.environ), check=False)


def test_list_shows_all_59_papers():
  out = _regjax("list")
  assert out.returncode == 0, out.stderr
  for p in papers.papers():
    assert p.id in out.stdout
  assert "59 papers" in out.stdout


def test_unknown_paper_id_suggests_valid_ones():
  out = _regjax("run", "pskd")
  assert out.returncode == 2
  assert "unknown paper id 'pskd'" in out.stderr and "ps_kd" in out.stderr


def test_not_implemented_paper_is_refused(monkeypatch, capsys):
  import dataclasses  # pylint: disable=g-import-not-at-top
  import pytest  # pylint: disable=g-import-not-at-top
  from common import cli  # pylint: disable=g-import-not-at-top
  # Every paper is implemented now: mark one unstarted for this test.
  real = papers.get("ps_kd")
  waiting = dataclasses.replace(real, status="not started")
  monkeypatch.setattr(papers, "get",
                      lambda pid: waiting if pid == "ps_kd" else real)
  with pytest.raises(SystemExit) as e:
    cli.main(["regjax", "run", "ps_kd"])
  assert e.value.code == cli.EXIT_USAGE
  assert "not implemented yet" in capsys.readouterr().err


def test_misspelt_config_key_fails_with_suggestion(tmp_path):
  out = _regjax("run", "ps_kd", "--config.train.stpes=3",
                f"--workdir={tmp_path}")
  assert out.returncode != 0
  assert "stpes" in out.stderr and "steps" in out.stderr


def test_run_study_end_to_end(tmp_path):
  out = _regjax("run", "ps_kd", "--seeds=0,1", "--arms=CE,PS-KD",
                "--config.train.steps=12", "--config.train.eval_every_epochs=0",
                f"--workdir={tmp_path}")
  assert out.returncode == 0, out.stderr[-3000:]
  for name in ("results.md", "results.json", "curves.png"):
    assert os.path.exists(tmp_path / name)
  assert "| PS-KD |" in out.stdout and "paper:" in out.stdout
  assert (tmp_path / "CE" / "seed_1" / "summary.json").exists()


def test_missing_dataset_is_a_one_line_error(tmp_path):
  out = _regjax("train", "--config=experiments/ps_kd/config.py:cifar100",
                f"--data_dir={tmp_path / 'tfds'}",
                f"--workdir={tmp_path / 'run'}")
  assert out.returncode == 2
  assert "regjax: DatasetNotFoundError" in out.stderr
  assert str(tmp_path / "tfds") in out.stderr and "tfds build" in out.stderr
  assert "Traceback" not in out.stderr

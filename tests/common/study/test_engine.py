"""The study engine: arms x seeds through a protocol, cached by fingerprint,
tables laid out from the config, the one writer of results files."""

from __future__ import annotations

import json
import os

import ml_collections as mlc
import pytest

from common import config as config_lib
from common import protocols
from common.protocols import runs
from common.study import engine
from common.study import tables

_CALLS = []


def _base():
  c = config_lib.core_config()
  c.experiment = "fake"
  c.protocol = "fake_for_test"
  c.x = 1.0
  c.study.arms = {"A": "x=1.0", "B": "x=3.0"}
  c.study.metrics = ("score",)
  c.study.tables = (dict(title="by round", cols=(("r1", "r1/score"),
                                                 ("r2", "r2/score", ".1f")),
                         std_cols=("r2",)),)
  c.lock()
  return c


def _run(config, workdir, show_progress=True, desc=""):
  del show_progress, desc
  _CALLS.append((config.x, config.seed))
  os.makedirs(workdir, exist_ok=True)
  runs.check_same_config(workdir, config, has_checkpoint=False)
  runs.write_config(workdir, config)
  v = config.x + config.seed
  return protocols.RunResult("finished", workdir, 1,
                             {"score": v, "r1/score": v, "r2/score": 2 * v},
                             [], 0.0)


def _validate(config):
  if config.x < 0:
    raise config_lib.ConfigError(f"config.x={config.x} must be >= 0")


@protocols.register_protocol("fake_for_test")
def _protocol():
  return protocols.Protocol("fake_for_test", _base, _validate, _run,
                            lambda c, w: None)


def test_study_runs_arms_by_seeds_and_caches_by_fingerprint(tmp_path):
  _CALLS.clear()
  result = engine.run_study(_base(), str(tmp_path), [0, 2],
                            show_progress=False, command="regjax run fake")
  assert sorted(_CALLS) == [(1.0, 0), (1.0, 2), (3.0, 0), (3.0, 2)]
  assert result.summary["A"]["score"] == {"mean": 2.0, "std": 2 ** 0.5}
  md = result.table_markdown
  assert "| A | 2.000 +- 1.414 |" in md
  assert "**by round**" in md and "| A | 2.000 | 4.0 +- 2.8 |" in md
  with open(result.paths["json"]) as f:
    record = json.load(f)
  assert record["runs"]["B"]["2"]["final"]["score"] == 5.0
  assert record["runs"]["B"]["2"]["fingerprint"]
  # A rerun is served from the summaries: nothing runs again.
  _CALLS.clear()
  engine.run_study(_base(), str(tmp_path), [0, 2], show_progress=False)
  assert not _CALLS
  # A changed setting is refused, never reported from the old result.
  changed = config_lib.apply_overrides(_base(), {"study.arms": {
      "A": "x=2.0"}})
  with pytest.raises(runs.WorkdirError, match="x: saved 1.0, now 2.0"):
    engine.run_study(changed, str(tmp_path), [0], show_progress=False)


def test_every_arm_is_validated_before_any_run(tmp_path):
  _CALLS.clear()
  bad = config_lib.apply_overrides(_base(), {"study.arms": {
      "A": "x=1.0", "C": "x=-1.0"}})
  with pytest.raises(config_lib.ConfigError, match="arm 'C'.*x=-1.0"):
    engine.run_study(bad, str(tmp_path), [0], show_progress=False)
  assert not _CALLS


@pytest.mark.parametrize("seeds,match", [([], "no seeds"),
                                         ([0, 0], "more than once")])
def test_bad_seed_lists(tmp_path, seeds, match):
  with pytest.raises(config_lib.ConfigError, match=match):
    engine.run_study(_base(), str(tmp_path), seeds, show_progress=False)


def test_unknown_arm_lists_the_arms(tmp_path):
  with pytest.raises(config_lib.ConfigError, match=r"\['A', 'B'\]"):
    engine.run_study(_base(), str(tmp_path), [0], arms=["Z"],
                     show_progress=False)


def test_spec_table_missing_metric_is_a_dash():
  text = tables.spec_table({"A": {0: {"m": 1.0}}},
                           {"cols": (("m", "m"), ("n", "n"))})
  assert text.splitlines()[-1] == "| A | 1.000 | - |"


def test_write_results_files_and_paths(tmp_path):
  config = mlc.ConfigDict({"a": 1})
  workdir = str(tmp_path / "new" / "study")
  result = engine.write_results(
      workdir, "| t |", [0, 2], {"arm": {"x": 1.0}}, config,
      command="regjax run x --seeds=0,2", preamble="Wall time: 3 s.",
      extra_paths={"plot": os.path.join(workdir, "p.png")}, runs={"r": 1})
  assert result.table_markdown == "| t |"
  assert result.paths["plot"].endswith("p.png")
  with open(result.paths["markdown"]) as f:
    assert f.read() == ("Command: `regjax run x --seeds=0,2`\n\n"
                        "Wall time: 3 s.\n\n| t |\n")
  with open(result.paths["json"]) as f:
    record = json.load(f)
  assert list(record) == ["command", "seeds", "summary", "runs",
                          "fingerprint", "config"]
  assert record["seeds"] == [0, 2] and record["config"] == {"a": 1}

"""`study.write_results`: the one writer of every runner's results files."""

from __future__ import annotations

import json
import os

import ml_collections as mlc

from common.study import engine as study


def test_write_results_files_and_paths(tmp_path):
  config = mlc.ConfigDict({"a": 1})
  workdir = str(tmp_path / "new" / "study")
  result = study.write_results(
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
  assert list(record) == ["command", "seeds", "summary", "runs", "config"]
  assert record["seeds"] == [0, 2] and record["config"] == {"a": 1}
  assert record["summary"] == {"arm": {"x": 1.0}}

"""Training curves read from a staged run (lm_rl's `rl/`), not from its
evaluation history."""

import json
import os
import types

from common.study import train_curves


def test_staged_run_rows_come_from_the_stage_file_not_the_history(tmp_path):
  os.makedirs(tmp_path / "rl")
  rows = [{"step": s, "split": "train", "method/entropy": 1.0 / s}
          for s in (1, 2, 3)]
  with open(tmp_path / "rl" / "metrics.jsonl", "w", encoding="utf-8") as f:
    f.write("\n".join(json.dumps(r) for r in rows) + "\n")
  # What lm_rl returns as history: evaluations only, no training rows.
  run = types.SimpleNamespace(workdir=str(tmp_path),
                              history=[{"step": 3, "split": "test",
                                        "pass@1": 0.5}])
  assert train_curves.run_rows(run, "rl") == rows
  steps, mean, _ = train_curves.curve_summary({"a": {0: run, 1: run}},
                                              "method/entropy", "rl")["a"]
  assert steps.tolist() == [1, 2, 3]
  assert mean.tolist() == [1.0, 0.5, 1.0 / 3]
  # Unstaged runs still use their in-memory history.
  assert train_curves.run_rows(run) == run.history

"""Token crisis: the repetition data option and the degradation table."""

import types

import ml_collections as mlc
import numpy as np
import pytest

from algos.lm import token_crisis
from common import config as config_lib
from common.data.text import source


def test_unique_token_option_keeps_exactly_that_many_tokens():
  seq_len, unique = 32, 32 * 5
  rows = token_crisis.rows_for_unique_tokens(unique, seq_len)
  data = mlc.ConfigDict(dict(
      name="arithmetic/tiny", data_dir="", train_split="train",
      eval_split="validation", kwargs=dict(tokenizer="byte", seq_len=seq_len,
                                           max_train_rows=rows)))
  train, _ = source.open_data(data)
  assert len(train) == rows
  batch = train.get(np.arange(len(train)))
  # Every row is full (stream packing pads only the split's last row), so
  # the training split holds exactly `unique` next-token targets, and rows
  # past the limit are not part of it.
  assert int((batch["segment_ids"] > 0).sum()) == unique
  assert batch["targets"].shape == (rows, seq_len)
  with pytest.raises(config_lib.ConfigError, match="multiple of"):
    token_crisis.rows_for_unique_tokens(unique + 1, seq_len)


def test_repetition_overrides_give_an_equal_budget():
  unique = token_crisis.repetition_overrides(4096, 4096, 8, 32)
  repeated = token_crisis.repetition_overrides(256, 4096, 8, 32)
  assert unique == ["data.kwargs.max_train_rows=128", "train.steps=16"]
  assert repeated == ["data.kwargs.max_train_rows=8", "train.steps=16"]
  with pytest.raises(config_lib.ConfigError, match="exceeds the budget"):
    token_crisis.repetition_overrides(8192, 4096, 8, 32)
  arms = token_crisis.arm_grid({"s": ["model.kwargs.d_model=8"]}, (0.0, 0.1),
                               {"unique": unique, "repeated": repeated})
  assert sorted(arms) == ["s/p0/repeated", "s/p0/unique",
                          "s/p10/repeated", "s/p10/unique"]
  assert "model.kwargs.dropout=0.1" in arms["s/p10/unique"]


def test_degradation_is_paired_by_seed(tmp_path):
  finals = {"a/p0/repeated": {0: {"loss": 2.5}, 1: {"loss": 2.9}},
            "a/p0/unique": {0: {"loss": 2.0}, 1: {"loss": 2.1},
                            2: {"loss": 9.0}}}
  table = token_crisis.degradation(
      finals, {"a": ("a/p0/repeated", "a/p0/unique")})
  assert table["a"]["mean"] == pytest.approx(0.65)
  assert table["a"]["std"] == pytest.approx(np.std([0.5, 0.8], ddof=1))
  assert table["a"]["n"] == 2
  # The shared bootstrap interval of the mean difference (seeds resampled).
  assert 0.5 <= table["a"]["ci_lo"] <= 0.65 <= table["a"]["ci_hi"] <= 0.8
  runs = {arm: {s: types.SimpleNamespace(final=f) for s, f in by.items()}
          for arm, by in finals.items()}
  paths = token_crisis.degradation_artifact({}, str(tmp_path), runs)
  text = open(paths["degradation"]).read()
  assert "| a, p0 | +0.6500 +- 0.2121 | 2 |" in text

"""`config.evaluator` replaces the classification metrics of evaluations."""

from __future__ import annotations

import sys
import types

import ml_collections as mlc
import pytest

from common import config as config_lib
from common import harness


def _setup(evaluator: str):
  config = config_lib.base_config()
  config.evaluator = evaluator
  return types.SimpleNamespace(config=config)


def test_evaluate_dispatches_to_the_configured_module(monkeypatch):
  module = types.ModuleType("fake_evaluator_for_test")
  module.evaluate = lambda s, state: {"seen": float(state)}
  monkeypatch.setitem(sys.modules, "fake_evaluator_for_test", module)
  assert harness.evaluate(_setup("fake_evaluator_for_test"), 3) == {
      "seen": 3.0}


def test_bad_evaluators_fail_loudly(monkeypatch):
  with pytest.raises(ValueError, match="not an importable module"):
    harness.evaluate(_setup("no_such_module_xyz"), None)
  monkeypatch.setitem(sys.modules, "empty_eval_mod",
                      types.ModuleType("empty_eval_mod"))
  with pytest.raises(ValueError, match="no evaluate"):
    harness.evaluate(_setup("empty_eval_mod"), None)


def test_base_config_defaults_keep_classification():
  config = config_lib.base_config()
  assert config.evaluator == "" and config.data.label_key == ""
  assert isinstance(config, mlc.ConfigDict)

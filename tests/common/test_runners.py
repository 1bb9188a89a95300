"""`config.runner` dispatch: bad names fail clearly, good ones are called."""

from __future__ import annotations

import sys
import types

import pytest

from common import config as config_lib
from common import runners


def _config(runner: str):
  c = config_lib.base_config()
  c.runner = runner
  return c


def test_default_runner_is_none():
  assert runners.get_runner(_config("")) is None


def test_unknown_runner_module_is_a_clear_error():
  with pytest.raises(ValueError, match="not an importable module"):
    runners.get_runner(_config("no_such_pkg.runner"))


def test_runner_missing_functions_is_a_clear_error(monkeypatch):
  monkeypatch.setitem(sys.modules, "fake_runner_a", types.ModuleType("a"))
  with pytest.raises(ValueError, match=r"lacks \['run_study', 'smoke'\]"):
    runners.get_runner(_config("fake_runner_a"))


def test_runner_is_called_and_validates(monkeypatch):
  calls = []
  module = types.ModuleType("fake_runner_b")
  module.run_study = lambda c, w, s, a, command: calls.append(("run", s, a))
  module.smoke = lambda c, w: calls.append(("smoke", w))
  module.validate = lambda c: calls.append(("validate",))
  monkeypatch.setitem(sys.modules, "fake_runner_b", module)
  config = _config("fake_runner_b")
  config.method.name = "not_a_registered_method"  # runner owns validation
  config_lib.validate(config)
  runners.run_study(config, "/tmp/x", [0, 1], ["A"])
  runners.smoke(config, "/tmp/y")
  assert calls == [("validate",), ("run", [0, 1], ["A"]), ("smoke", "/tmp/y")]

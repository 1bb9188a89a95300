"""The analysis protocol: metrics without training, cached per config,
refusing another config's workdir, SIGTERM honoured after the unit."""

from __future__ import annotations

import os
import signal

import ml_collections as mlc
import pytest

from common import config as config_lib
from common.protocols import analysis
from common.protocols import runs
from common.study import engine

CALLS = []


def _run(config):
  CALLS.append(config.seed)
  if config.toy.sigterm:
    os.kill(os.getpid(), signal.SIGTERM)   # arrives during the computation
  return {"value": config.toy.x * 2 + config.seed}


@analysis.register_analysis("toy_analysis")
def _make():
  def check(config):
    config_lib.check_rules(config, {"toy.x": config_lib.at_least(0.0)})
  return analysis.Analysis(run=_run, validate=check, smoke={"toy.x": 0.5})


def _config(**overrides):
  c = analysis.base_config()
  c.experiment = "toy"
  c.analysis.name = "toy_analysis"
  c.toy = mlc.ConfigDict(dict(x=1.0, sigterm=False))
  c.study.arms = {"a": "toy.x=1.0", "b": "toy.x=3.0"}
  c.study.tables = (dict(cols=(("value", "value", ".1f"),)),)
  c.lock()
  return config_lib.apply_overrides(c, overrides)


def test_run_is_cached_and_refuses_another_config(tmp_path):
  CALLS.clear()
  first = analysis.run(_config(), str(tmp_path))
  assert first.status == "finished" and first.final == {"value": 2.0}
  again = analysis.run(_config(), str(tmp_path))
  assert again.final == first.final and CALLS == [0]   # served, not rerun
  with pytest.raises(runs.WorkdirError, match="toy.x"):
    analysis.run(_config(**{"toy.x": 2.0}), str(tmp_path))


def test_validation_names_the_field():
  with pytest.raises(config_lib.ConfigError, match="toy.x=-1.0"):
    analysis.validate(_config(**{"toy.x": -1.0}))
  with pytest.raises(config_lib.ConfigError, match="not a registered"):
    analysis.validate(_config(**{"analysis.name": "nope"}))


def test_sigterm_saves_the_result_and_stops_the_study(tmp_path):
  config = _config(**{"toy.sigterm": True})
  with pytest.raises(engine.PreemptedError):
    engine.run_study(config, str(tmp_path), seeds=[0, 1],
                     show_progress=False)
  # The first run finished its unit and saved it; the study stopped there.
  cached = runs.cached_result(str(tmp_path / "a" / "seed_0"),
                              config_lib.apply_overrides(config, {"seed": 0}))
  assert cached is not None and cached.final == {"value": 2.0}
  assert not os.path.exists(tmp_path / "a" / "seed_1")


def test_study_table_and_smoke(tmp_path):
  result = engine.run_study(_config(), str(tmp_path / "study"),
                            seeds=[0, 1], show_progress=False)
  assert "| a | 2.5 +- 0.7 |" in result.table_markdown
  assert "| b | 6.5 +- 0.7 |" in result.table_markdown
  analysis.smoke(_config(), str(tmp_path / "smoke"))

"""`config.eval.name` picks the evaluator the loop calls; names are checked."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from common import config as config_lib
from common import protocols
from common.eval import evaluators
from common.protocols import supervised
from tests.conftest import blobs_config

_SEEN = []


@evaluators.register_evaluator("test_param_count")
def _param_count(setup, state):
  """Counts parameters and reports the step it was given."""
  _SEEN.append(int(state.step))
  n = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(state.params))
  return {"params": float(n), "step": float(state.step)}


def test_loop_reports_the_configured_evaluator(tmp_path):
  _SEEN.clear()
  config = blobs_config(**{"train.steps": 4, "eval.name": "test_param_count",
                           "train.eval_every_epochs": 0})
  result = supervised.train(config, str(tmp_path), show_progress=False)
  # mlp(32 hidden): 8*32 + 32 + 32*3 + 3 parameters, evaluated at the end.
  assert result.final == {"params": 387.0, "step": 4.0}
  assert _SEEN == [4]


def test_classification_is_the_default_and_counts_every_example(tmp_path):
  result = supervised.train(blobs_config(**{"train.steps": 2}),
                            str(tmp_path), show_progress=False)
  assert result.final["num_examples"] == 512     # gaussian_blobs' held-out


def test_unknown_evaluator_is_refused_with_the_registered_ones():
  config = blobs_config(**{"eval.name": "clasification"})
  with pytest.raises(config_lib.ConfigError) as e:
    protocols.validate(config)
  assert "'clasification'" in str(e.value)
  assert "classification" in str(e.value) and "disentanglement" in str(
      e.value)


def test_section_settings_fill_defaults_and_refuse_unknown_keys():
  import ml_collections as mlc  # pylint: disable=g-import-not-at-top
  config = mlc.ConfigDict({"eval": {"name": "x", "probe": {"k": 3}}})
  got = evaluators.section_settings(config, "probe", {"k": 1, "n": 2})
  assert got == {"k": 3, "n": 2}
  assert evaluators.section_settings(config, "other", {"n": 2}) == {"n": 2}
  config.eval.probe.kk = 1
  with pytest.raises(ValueError, match=r"config.eval.probe has \['kk'\]"):
    evaluators.section_settings(config, "probe", {"k": 1})

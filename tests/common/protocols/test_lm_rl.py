"""lm_rl: one SFT serves every RL study with the same base model, and its
scores are cached per evaluator setting."""

import importlib
import types

import numpy as np

from common import config as config_lib
from common.protocols import lm_rl


def _config(paper, variant):
  return importlib.import_module(
      f"experiments.{paper}.config").get_config(variant)


def test_rl_studies_with_the_same_base_model_share_the_sft_fingerprint():
  evol = lm_rl.sft_config(_config("evol_rl", "arith"))
  aepo = lm_rl.sft_config(_config("aepo", "arithmetic"))
  assert config_lib.fingerprint(evol) == config_lib.fingerprint(aepo)
  longer = config_lib.apply_overrides(_config("aepo", "arithmetic"),
                                      {"sft.steps": 1501})
  assert (config_lib.fingerprint(lm_rl.sft_config(longer))
          != config_lib.fingerprint(aepo))


def test_sft_scores_are_cached_per_evaluator_setting(tmp_path, monkeypatch):
  calls = []

  def evaluator(setup, state):
    del setup, state
    calls.append(1)
    return {"test/pass@1": np.float32(len(calls))}

  monkeypatch.setattr(lm_rl.evaluators, "get_evaluator", lambda _: evaluator)
  monkeypatch.setattr("common.data.procedural.make",
                      lambda c: types.SimpleNamespace(num_classes=259))
  base = lm_rl.base_config()
  other = config_lib.apply_overrides(base, {"eval.verifiable.max_prompts": 7})
  folder = str(tmp_path)
  first = lm_rl._sft_scores(base, folder, None)    # pylint: disable=protected-access
  again = lm_rl._sft_scores(base, folder, None)    # pylint: disable=protected-access
  assert first == again == {"test/pass@1": 1.0} and len(calls) == 1
  assert lm_rl._sft_scores(other, folder, None) == {"test/pass@1": 2.0}  # pylint: disable=protected-access

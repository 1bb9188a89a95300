"""The few-shot segmentation protocol's fold derivation and refusals."""

from __future__ import annotations

import pytest

from common import config as config_lib
from common.protocols import fewshot_seg


def _config(**overrides):
  c = config_lib.load_config("experiments/repri/config.py:segshapes")
  return config_lib.apply_overrides(c, overrides)


def test_fold_sets_the_base_classes_and_the_novel_episodes():
  derived = fewshot_seg.fold_config(_config(**{"fewshot.fold": 2}))
  assert derived.eval.fewshot.novel_classes == (11, 12, 13, 14, 15)
  assert derived.data.classes == (0, *range(1, 11), *range(16, 21))
  coco = fewshot_seg.fold_config(_config(**{
      "fewshot.num_classes": 80, "fewshot.interleaved": True,
      "fewshot.fold": 1}))
  assert coco.eval.fewshot.novel_classes == tuple(range(2, 81, 4))


@pytest.mark.parametrize("overrides,match", [
    ({"data.classes": (0, 1)}, "derived from config.fewshot"),
    ({"fewshot.fold": 4}, "fold=4"),
    ({"eval.fewshot.solvers": ("repri", "nope")}, "nope"),
    ({"eval.fewshot.shots": (0,)}, "shots"),
])
def test_bad_settings_fail_with_a_one_line_error(overrides, match):
  with pytest.raises(config_lib.ConfigError, match=match):
    fewshot_seg.validate(_config(**overrides))

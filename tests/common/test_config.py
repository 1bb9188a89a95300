"""Config errors say what was wrong and what is allowed."""

from __future__ import annotations

import pytest

from common import config as config_lib


def _cfg():
  return config_lib.load_config("experiments/ps_kd/config.py:digits")


def test_unknown_key_lists_valid_keys_and_suggestion():
  with pytest.raises(AttributeError) as e:
    config_lib.apply_overrides(_cfg(), ["train.stpes=3"])
  assert "stpes" in str(e.value) and "steps" in str(e.value)


def test_wrong_type_names_expected_type():
  with pytest.raises(TypeError, match="expects int"):
    config_lib.apply_overrides(_cfg(), ["train.steps=abc"])
  with pytest.raises(TypeError, match="expects bool"):
    config_lib.apply_overrides(_cfg(), ["data.flip=maybe"])


def test_overrides_parse_to_field_types():
  c = config_lib.apply_overrides(_cfg(), [
      "train.steps=7", "schedule.learning_rate=1", "data.flip=true",
      "schedule.boundaries_epochs=(3, 4)", "model.name=mlp"])
  assert c.train.steps == 7
  assert c.schedule.learning_rate == 1.0
  assert c.data.flip is True
  assert c.schedule.boundaries_epochs == (3, 4)
  assert c.model.name == "mlp"


def test_config_is_locked_and_copy_is_independent():
  c = _cfg()
  with pytest.raises(AttributeError):
    c.train.new_key = 1
  c2 = config_lib.apply_overrides(c, ["train.steps=5"])
  assert c.train.steps == -1 and c2.train.steps == 5


def test_unknown_variant_and_method_fail_clearly():
  with pytest.raises(ValueError, match="allowed"):
    config_lib.load_config("experiments/ps_kd/config.py:cifar1000")
  c = config_lib.apply_overrides(_cfg(), ["method.name=pskd"])
  with pytest.raises(ValueError, match="registered"):
    config_lib.validate(c)


def test_malformed_override():
  with pytest.raises(ValueError, match="key.path=value"):
    config_lib.apply_overrides(_cfg(), ["train.steps"])

"""Config errors say what was wrong and what is allowed."""

from __future__ import annotations

import pytest

from common import config as config_lib
from common import protocols
from common.protocols import supervised


def _cfg():
  return config_lib.load_config("experiments/ps_kd/config.py:digits")


def test_unknown_key_lists_valid_keys_and_suggestion():
  with pytest.raises(config_lib.ConfigError) as e:
    config_lib.apply_overrides(_cfg(), ["train.stpes=3"])
  msg = str(e.value)
  assert "'train.stpes'" in msg and "did you mean 'steps'" in msg
  assert "valid keys here:" in msg and "batch_size" in msg
  with pytest.raises(config_lib.ConfigError, match="valid keys here"):
    config_lib.apply_overrides(_cfg(), ["trian.steps=3"])


def test_wrong_type_names_expected_type():
  with pytest.raises(config_lib.ConfigError, match="expects int"):
    config_lib.apply_overrides(_cfg(), ["train.steps=abc"])
  with pytest.raises(config_lib.ConfigError, match="expects bool"):
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
  with pytest.raises(config_lib.ConfigError,
                     match="no variant 'cifar1000'.*allowed variants"):
    config_lib.load_config("experiments/ps_kd/config.py:cifar1000")
  c = config_lib.apply_overrides(_cfg(), ["method.name=pskd"])
  with pytest.raises(config_lib.ConfigError, match="registered"):
    protocols.validate(c)


def test_malformed_override():
  with pytest.raises(config_lib.ConfigError, match="key.path=value"):
    config_lib.apply_overrides(_cfg(), ["train.steps"])


@pytest.mark.parametrize("override,field", [
    ("train.checkpoint_every_steps=0", "train.checkpoint_every_steps"),
    ("train.log_every_steps=0", "train.log_every_steps"),
    ("train.keep_checkpoints=0", "train.keep_checkpoints"),
    ("train.eval_every_epochs=-1", "train.eval_every_epochs"),
    ("data.crop_padding=-2", "data.crop_padding"),
    ("schedule.learning_rate=-0.1", "schedule.learning_rate"),
    ("schedule.boundaries_epochs=('a',)", "schedule.boundaries_epochs"),
    ("optim.momentum=1.5", "optim.momentum"),
    ("model.dtype=float13", "model.dtype"),
    ("train.micro_batches=3", "train.micro_batches"),
])
def test_values_outside_their_range_name_the_field(override, field):
  c = config_lib.apply_overrides(_cfg(), [override])
  with pytest.raises(config_lib.ConfigError, match=field.replace(".", r"\.")):
    protocols.validate(c)


def test_protocol_schema_has_no_unread_sections():
  """Keys nobody reads do not exist: an override of one fails."""
  c = supervised.base_config()
  assert set(c.keys()) == {"experiment", "protocol", "seed", "study",
                           "smoke", "data", "model", "method", "optim",
                           "schedule", "train", "eval"}
  with pytest.raises(config_lib.ConfigError, match="unknown config key"):
    config_lib.apply_overrides(c, ["runner=x"])


def test_fingerprint_ignores_logging_and_follows_results():
  c = _cfg()
  same = config_lib.apply_overrides(c, ["train.log_every_steps=7",
                                        "data.data_dir=/x"])
  other = config_lib.apply_overrides(c, ["method.ps_kd.alpha_T=0.5"])
  assert config_lib.fingerprint(same) == config_lib.fingerprint(c)
  assert config_lib.fingerprint(other) != config_lib.fingerprint(c)

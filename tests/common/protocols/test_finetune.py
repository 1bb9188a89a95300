"""The finetune protocol starts from the params of the pretraining run."""

import os

import chex
import jax
import pytest

from common import config as config_lib
from common.protocols import finetune
from common.protocols import supervised


def _config(**overrides):
  c = finetune.base_config()
  c.experiment = "test_finetune"
  c.data.update(name="gaussian_blobs", source="generator", input_key="x",
                preprocess="none")
  c.model.update(name="mlp")
  c.model.kwargs = dict(hidden_sizes=(8,))
  c.optim.update(name="sgd", momentum=0.0, nesterov=False, weight_decay=0.0)
  # Fine-tuning at learning rate 0 keeps the pretrained params exactly.
  c.schedule.update(name="constant", learning_rate=0.0)
  c.train.update(batch_size=16, steps=2, eval_batch_size=32,
                 tensorboard=False, eval_every_epochs=0)
  c.pretrain.overrides = ("train.steps=3", "schedule.learning_rate=0.1")
  c.lock()
  return config_lib.apply_overrides(c, overrides)


def test_finetune_starts_from_the_pretrained_params(tmp_path):
  config = _config()
  study = tmp_path / "arm" / "seed_0"
  result = finetune.run(config, str(study), show_progress=False)
  assert result.status == "finished" and result.steps == 2
  assert {"pretrained/error", "finetuned/error"} <= set(result.final)
  # The pretraining run is shared under <study>/pretrained/<fp>/seed_0.
  folder = finetune.pretrain_dir(config, str(study))
  assert folder.startswith(str(tmp_path / "pretrained"))
  pre_cfg = finetune.pretrain_config(config)
  assert pre_cfg.train.steps == 3 and pre_cfg.protocol == "supervised"
  _, pre_state = supervised.restore(pre_cfg, folder)
  _, state = supervised.restore(config, str(study / "finetune"))
  assert int(pre_state.step) == 3 and int(state.step) == 2
  chex.assert_trees_all_close(jax.device_get(state.params),
                              jax.device_get(pre_state.params))
  assert result.final["finetuned/error"] == pytest.approx(
      result.final["pretrained/error"])
  # A second arm with the same pretraining reuses it (served from its
  # summary); a rerun of the arm is served from its own.
  other = finetune.run(config, str(tmp_path / "arm2" / "seed_0"),
                       show_progress=False)
  assert other.final == result.final
  assert len(os.listdir(tmp_path / "pretrained")) == 1


def test_bad_pretrain_override_is_one_line():
  with pytest.raises(config_lib.ConfigError, match="pretrain.overrides"):
    finetune.pretrain_config(_config(**{
        "pretrain.overrides": ("pretrain.dir=x",)}))

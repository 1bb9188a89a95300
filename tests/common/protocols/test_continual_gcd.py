"""The continual_gcd protocol: per-class prototypes and a frozen previous
model carried in `method_state` across a stage boundary keep 1-vs-8-device
equality and bit-exact resume (Happy's method, two tiny stages)."""

from __future__ import annotations

import os

import chex
import jax
import numpy as np
import pytest

from common import config as config_lib
from common.protocols import continual_gcd
from common.protocols import supervised
from tests.conftest import REPO_ROOT
from tests.conftest import run_on_cpu_devices
from tests.conftest import sigterm_at

STEPS = 3


def happy_config(**overrides):
  """Two stages on digits (stage 0: 5 classes labelled; stage 1: 7)."""
  from algos.discovery import happy_method  # pylint: disable=g-import-not-at-top
  c = continual_gcd.base_config()
  c.experiment = "test_continual_gcd"
  c.data.update(name="digits", crop_padding=1, flip=False, mean=(0.5,),
                std=(0.5,))
  c.model.name = "discovery_head"
  c.model.kwargs = dict(backbone="small_cnn",
                        backbone_kwargs=dict(widths=(8, 16, 16)),
                        hidden_dim=32, proj_dim=16, nlayers=2)
  c.method.name = "happy"
  c.method.happy = dict(happy_method.DEFAULTS)
  c.optim.update(name="sgd", momentum=0.9, nesterov=False, weight_decay=5e-5)
  c.schedule.update(name="cosine", learning_rate=0.05)
  c.train.update(batch_size=32, steps=STEPS, eval_batch_size=360,
                 log_every_steps=1, eval_every_epochs=0,
                 checkpoint_every_steps=100, tensorboard=False)
  c.continual.stages = (("method.happy.active_classes=5",),
                        ("method.happy.active_classes=7",
                         "method.happy.memax_weight=0.0"))
  c.lock()
  return config_lib.apply_overrides(c, overrides)


def _final_state(config, workdir):
  extras = continual_gcd.stage_extras(config, workdir, 1)
  _, state = supervised.restore(continual_gcd.stage_config(config, 1),
                                os.path.join(workdir, "stage_1"), extras)
  return jax.device_get(state)


_SCRIPT = f"""
import json, os, sys
import jax
import numpy as np
sys.path.insert(0, {REPO_ROOT!r})
from tests.common.protocols.test_continual_gcd import happy_config, _final_state
from common.protocols import continual_gcd
config = happy_config()
result = continual_gcd.run(config, sys.argv[1], show_progress=False)
state = _final_state(config, sys.argv[1])
ms = state.method_state
print(json.dumps({{"devices": jax.device_count(), "final": result.final,
                  "prototypes": np.asarray(ms["prototypes"]).tolist(),
                  "radius": float(ms["radius"]),
                  "head": np.asarray(state.params["classifier"]["kernel"]).tolist()}}))
"""


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
  """An uninterrupted run on this process's device (one CPU device)."""
  workdir = str(tmp_path_factory.mktemp("straight"))
  config = happy_config()
  result = continual_gcd.run(config, workdir, show_progress=False)
  assert result.status == "finished" and result.steps == 2 * STEPS
  return config, workdir, result


@pytest.mark.slow   # a second process on 8 devices: ~1-2 min on 2 cores
def test_prototypes_in_method_state_agree_on_one_and_eight_devices(
    straight, tmp_path):
  config, workdir, result = straight
  assert jax.device_count() == 1
  one = _final_state(config, workdir)
  eight = run_on_cpu_devices(_SCRIPT, 8, str(tmp_path / "eight"))
  assert eight["devices"] == 8
  ms = one.method_state
  # prototypes come from stage 0's model on stage 0's data (eval mode)
  np.testing.assert_allclose(eight["prototypes"], ms["prototypes"],
                             rtol=1e-4, atol=1e-5)
  assert float(ms["radius"]) > 0
  np.testing.assert_allclose(eight["radius"], ms["radius"], rtol=1e-4)
  np.testing.assert_allclose(eight["head"], one.params["classifier"]["kernel"],
                             rtol=1e-3, atol=1e-4)
  for k, v in result.final.items():
    np.testing.assert_allclose(eight["final"][k], v, rtol=1e-3, atol=1e-3)


def test_resume_across_the_stage_boundary_is_bit_exact(straight, tmp_path,
                                                       monkeypatch):
  config, workdir, result = straight
  # preempted after the first step of stage 1, then rerun
  train = supervised.train

  def preempted_train(cfg, folder, **kw):
    if folder.endswith("stage_1"):
      kw["hooks"] = [sigterm_at(1)]
    return train(cfg, folder, **kw)

  monkeypatch.setattr(supervised, "train", preempted_train)
  first = continual_gcd.run(config, str(tmp_path), show_progress=False)
  assert first.status == "preempted"
  assert os.path.exists(tmp_path / "stage_1" / continual_gcd.TRANSITION)
  monkeypatch.setattr(supervised, "train", train)
  resumed = continual_gcd.run(config, str(tmp_path), show_progress=False)
  assert resumed.final == result.final
  a = _final_state(config, workdir)
  b = _final_state(config, str(tmp_path))
  chex.assert_trees_all_equal(a.params, b.params)
  chex.assert_trees_all_equal(a.method_state, b.method_state)
  ms = a.method_state
  np.testing.assert_array_equal(ms["seen"], np.arange(10) < 5)
  np.testing.assert_array_equal(ms["active"], np.arange(10) < 7)
  assert int(ms["stage"]) == 1
  # the frozen teacher is stage 0's final model
  _, s0 = supervised.restore(continual_gcd.stage_config(config, 0),
                             os.path.join(workdir, "stage_0"))
  chex.assert_trees_all_equal(ms["teacher"]["params"],
                              jax.device_get(s0.params))


def test_bad_stage_override_is_one_line():
  with pytest.raises(config_lib.ConfigError, match="continual.stages"):
    continual_gcd.stage_config(happy_config(**{
        "continual.stages": (("continual.stages=1",),)}), 0)

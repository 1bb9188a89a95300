"""QLAE through the shared loop: 1 vs 8 (fake CPU) devices agree.

Each device count runs in its own subprocess
(`--xla_force_host_platform_device_count`), like
tests/common/test_multidevice.py; the run includes the disentanglement
evaluator (`config.evaluator`).
"""

from __future__ import annotations

import numpy as np

from tests.conftest import train_on_cpu_devices

_CONFIG = """config_lib.apply_overrides(
    config_lib.load_config("experiments/qlae/config.py"),
    {"train.steps": 8, "train.log_every_steps": 1,
     "train.tensorboard": False, "train.checkpoint_every_steps": 8,
     "disentanglement.max_eval_examples": 768})"""


def _run(devices: int, workdir: str) -> dict:
  return train_on_cpu_devices(_CONFIG, devices, workdir)


def test_qlae_one_and_eight_devices_agree(tmp_path):
  one = _run(1, str(tmp_path / "one"))
  eight = _run(8, str(tmp_path / "eight"))
  assert one["devices"] == 1 and eight["devices"] == 8
  assert len(one["losses"]) == len(eight["losses"]) == 8
  np.testing.assert_allclose(eight["losses"], one["losses"], rtol=1e-4)
  for key in ("bce", "mse"):
    np.testing.assert_allclose(eight["eval"][key], one["eval"][key],
                               rtol=1e-3)
  for key in ("infom", "infoe", "infoc"):
    assert 0.0 <= one["eval"][key] <= 1.0
    np.testing.assert_allclose(eight["eval"][key], one["eval"][key],
                               atol=0.02)

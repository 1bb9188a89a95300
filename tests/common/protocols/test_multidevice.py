"""1 vs 8 (fake CPU) devices: the same loss trajectory and final model.

The device count is fixed when JAX starts, so each count runs in its own
subprocess (`--xla_force_host_platform_device_count`).
"""

from __future__ import annotations

import numpy as np

from tests.conftest import train_on_cpu_devices

_CONFIG = ('tiny_config(**{"train.steps": 12, "train.batch_size": 64, '
           '"train.eval_batch_size": 120})')


def _run(devices: int, workdir: str) -> dict:
  return train_on_cpu_devices(_CONFIG, devices, workdir)


def test_one_and_eight_devices_agree(tmp_path):
  one = _run(1, str(tmp_path / "one"))
  eight = _run(8, str(tmp_path / "eight"))
  assert one["devices"] == 1 and eight["devices"] == 8
  assert len(one["losses"]) == len(eight["losses"]) == 12
  # Only the order of the cross-device sums differs.
  np.testing.assert_allclose(eight["losses"], one["losses"], rtol=2e-5)
  for key in ("error", "nll", "ece"):
    np.testing.assert_allclose(eight["eval"][key], one["eval"][key],
                               rtol=1e-3, atol=1e-4)


def test_generator_source_one_and_eight_devices_agree(tmp_path):
  """Batches drawn on device: the same batch and model on 1 or 8 devices."""
  expr = 'blobs_config(**{"train.steps": 10})'
  one = train_on_cpu_devices(expr, 1, str(tmp_path / "one"))
  eight = train_on_cpu_devices(expr, 8, str(tmp_path / "eight"))
  assert eight["devices"] == 8 and len(one["losses"]) == 10
  np.testing.assert_allclose(eight["losses"], one["losses"], rtol=2e-5)
  np.testing.assert_allclose(eight["eval"]["nll"], one["eval"]["nll"],
                             rtol=1e-4)

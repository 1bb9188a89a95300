"""1 vs 8 (fake CPU) devices: the same loss trajectory and final model.

The device count is fixed when JAX starts, so each count runs in its own
subprocess (`--xla_force_host_platform_device_count`).
"""

from __future__ import annotations

import textwrap

import numpy as np

from tests.conftest import REPO_ROOT
from tests.conftest import run_on_cpu_devices

_SCRIPT = textwrap.dedent("""
    import json, sys
    import jax, numpy as np
    sys.path.insert(0, {root!r})
    from common import loop, logging_utils
    from tests.conftest import tiny_config
    config = tiny_config(**{{"train.steps": 12, "train.batch_size": 64,
                            "train.eval_batch_size": 120}})
    result = loop.train(config, sys.argv[1], show_progress=False)
    losses = [r["loss"] for r in logging_utils.read_jsonl(
        sys.argv[1] + "/metrics.jsonl") if r["split"] == "train"]
    print(json.dumps({{"devices": jax.device_count(), "losses": losses,
                      "eval": result.final_eval}}))
""")


def _run(devices: int, workdir: str) -> dict:
  return run_on_cpu_devices(_SCRIPT.format(root=REPO_ROOT), devices, workdir)


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

"""LegoGCD through the harness: 1 device = 8 devices, bit-exact resume.

The step forwards two augmented views of the batch and updates the
per-class prior `q_hat` in `method_state` inside the jitted step; both must
keep the harness invariants. One process per device count (run at once)
trains a tiny digits GCD run to the end, and again with a SIGTERM after
step 3 and a resume. Marked slow: about 85 s of CPU time (the two
processes' compilations), over this task's test budget.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from tests.conftest import REPO_ROOT, run_on_one_and_eight_devices

_SCRIPT = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {root!r})
    import jax
    from common import config as config_lib
    from common.core import logging_utils
    from common.protocols import supervised
    from tests.conftest import sigterm_at
    cfg = config_lib.apply_overrides(
        config_lib.load_config("experiments/legogcd/config.py:digits"), {{
            "model.kwargs.backbone_kwargs": {{"widths": (4, 8, 8)}},
            "model.kwargs.hidden_dim": 16, "model.kwargs.proj_dim": 8,
            "train.batch_size": 64, "train.steps": 6,
            "train.eval_every_epochs": 0, "train.log_every_steps": 1,
            "train.checkpoint_every_steps": 2, "train.tensorboard": False,
            "method.legogcd.thr": 0.15, "method.legogcd.qhat_momentum": 0.5,
            "method.legogcd.warmup_teacher_temp_epochs": 2}})
    wd = sys.argv[1]
    rows = lambda d: [r for r in logging_utils.read_jsonl(
        d + "/metrics.jsonl") if r["split"] == "train"]
    full = supervised.train(cfg, wd + "/full", show_progress=False)
    cut = supervised.train(cfg, wd + "/cut", hooks=[sigterm_at(3)],
                           show_progress=False)
    resumed = supervised.train(cfg, wd + "/cut", show_progress=False)
    print(json.dumps({{
        "devices": jax.device_count(), "cut_status": cut.status,
        "losses": [r["loss"] for r in rows(wd + "/full")],
        "qhat": [r["method/qhat_entropy"] for r in rows(wd + "/full")],
        "selected": [r["method/selected"] for r in rows(wd + "/full")],
        "resumed_losses": [r["loss"] for r in rows(wd + "/cut")],
        "resumed_qhat": [r["method/qhat_entropy"] for r in rows(wd + "/cut")],
        "final": full.final, "resumed_final": resumed.final}}))
""")


@pytest.mark.slow   # two processes, each compiles a step: ~85 s of CPU
def test_two_views_and_class_prior_keep_devices_and_resume(tmp_path_factory):
  one, eight = run_on_one_and_eight_devices(
      _SCRIPT.format(root=REPO_ROOT), tmp_path_factory)
  for run in (one, eight):
    assert run["cut_status"] == "preempted"
    assert run["resumed_losses"] == run["losses"]     # bit for bit
    assert run["resumed_qhat"] == run["qhat"]
    assert run["resumed_final"] == run["final"]
  assert max(one["selected"]) > 0     # LER saw potential-known rows
  assert one["qhat"][0] != one["qhat"][-1]   # the prior moved in the step
  np.testing.assert_allclose(eight["losses"], one["losses"], rtol=1e-4)
  np.testing.assert_allclose(eight["qhat"], one["qhat"], rtol=1e-5)
  for key in ("all_acc", "old_acc", "new_acc"):
    assert abs(eight["final"][key] - one["final"][key]) <= 2e-3

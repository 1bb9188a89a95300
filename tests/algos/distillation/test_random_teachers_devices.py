"""The EMA teacher and the centre in `method_state`: 1 = 8 devices, exact
resume.

Random Teachers' EMA option (DINO's teacher) updates the teacher inside the
jitted step (`Method.after_update`) and the centre inside the loss, both
from global-batch quantities. A tiny digits run (MLP encoder + DINO head,
6 steps) trains in one subprocess per device count: straight, and killed by
SIGTERM after step 3 then resumed. Per device count the resumed run must
equal the straight one bit for bit (losses, centre, teacher, params);
across device counts they agree up to summation order.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from tests.conftest import REPO_ROOT
from tests.conftest import run_on_one_and_eight_devices

pytestmark = pytest.mark.slow

_SCRIPT = textwrap.dedent("""
    import json, os, sys
    import jax, numpy as np
    from jax.flatten_util import ravel_pytree
    sys.path.insert(0, {root!r})
    from common.core import logging_utils
    from common.protocols import supervised
    from tests.conftest import sigterm_at
    from tests.algos.distillation.test_random_teachers import tiny_config
    cfg = tiny_config(**{{"method.random_teachers.teacher": "ema"}})
    out = {{"devices": jax.device_count()}}

    def run(name, hooks=()):
      workdir = os.path.join(sys.argv[1], name)
      result = supervised.train(cfg, workdir, hooks=list(hooks),
                                show_progress=False)
      return workdir, result

    straight_dir, straight = run("straight")
    first_dir, first = run("resumed", [sigterm_at(3)])
    assert first.status == "preempted" and first.steps == 3, first
    _, resumed = run("resumed")
    for key, workdir in (("straight", straight_dir), ("resumed", first_dir)):
      _, state = supervised.restore(cfg, workdir)
      ms = state.method_state
      out[key] = {{
          "losses": [r["loss"] for r in logging_utils.read_jsonl(
              os.path.join(workdir, "metrics.jsonl"))
                     if r["split"] == "train"],
          "center": np.asarray(ms["center"]).tolist(),
          "teacher": np.asarray(ravel_pytree(ms["teacher"])[0]).tolist(),
          "params": np.asarray(ravel_pytree(state.params)[0]).tolist()}}
    out["final"] = straight.final
    out["resumed_final"] = resumed.final
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  return run_on_one_and_eight_devices(_SCRIPT.format(root=REPO_ROOT),
                                      tmp_path_factory)


def test_resume_of_ema_teacher_and_centre_is_bit_exact(runs):
  for r in runs:
    assert len(r["straight"]["losses"]) == 6
    assert r["straight"] == r["resumed"]
    assert r["final"] == r["resumed_final"]
    assert np.any(r["straight"]["center"])   # the centre moved


def test_one_and_eight_devices_agree(runs):
  one, eight = runs
  for key in ("losses", "center", "teacher", "params"):
    np.testing.assert_allclose(eight["straight"][key], one["straight"][key],
                               rtol=1e-4, atol=1e-6, err_msg=key)
  assert abs(eight["final"]["probe_acc"] - one["final"]["probe_acc"]) <= 1.0

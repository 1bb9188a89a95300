"""1 vs 8 (fake CPU) devices: wdm and monge_gap on the shared step agree.

Both train through the supervised loop with a procedural source: the batch
of step t is drawn on device from (seed, t) and split over the `("data",)`
mesh, and their losses (contrastive scores, Sinkhorn) couple the whole
global batch. A few tiny steps of each run in one subprocess per device
count (the count is fixed when JAX starts); the trained parameters, the
logged losses and the final metrics must agree, and a batch that 8 devices
cannot split is refused with the setting's name.
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
    from common import config as config_lib
    from common.core import logging_utils
    from common.protocols import build, supervised
    workdir = sys.argv[1]
    out = {{"devices": jax.device_count()}}
    tiny = {{
        "wdm": ("experiments/wdm/config.py", {{
            "model.kwargs.hidden": (16,), "model.kwargs.out_dim": 8,
            "data.kwargs.probe_train": 64,
            "data.kwargs.probe_test": 32}}),
        "monge_gap": ("experiments/monge_gap/config.py", {{
            "model.kwargs.hidden": (8,), "data.kwargs.num_test": 32}}),
    }}
    for name, (spec, overrides) in tiny.items():
      cfg = config_lib.apply_overrides(config_lib.load_config(spec), dict(
          overrides, **{{"train.steps": 4, "train.batch_size": 16,
                         "train.log_every_steps": 1}}))
      run_dir = os.path.join(workdir, name)
      result = supervised.train(cfg, run_dir, show_progress=False)
      _, state = supervised.restore(cfg, run_dir)
      out[name] = {{
          "params": np.asarray(ravel_pytree(state.params)[0]).tolist(),
          "losses": [r["loss"] for r in logging_utils.read_jsonl(
              os.path.join(run_dir, "metrics.jsonl"))
                     if r["split"] == "train"],
          "final": result.final}}
      try:
        build.setup(config_lib.apply_overrides(cfg, {{"train.batch_size": 12}}))
        out[name]["refusal"] = None
      except ValueError as e:
        out[name]["refusal"] = str(e)
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  return run_on_one_and_eight_devices(_SCRIPT.format(root=REPO_ROOT),
                                      tmp_path_factory)


@pytest.mark.parametrize("name", ["wdm", "monge_gap"])
def test_one_and_eight_devices_agree(runs, name):
  one, eight = (r[name] for r in runs)
  assert len(one["losses"]) == 4
  # Only the order of the cross-device sums differs.
  np.testing.assert_allclose(eight["losses"], one["losses"], rtol=2e-5)
  np.testing.assert_allclose(eight["params"], one["params"], rtol=1e-4,
                             atol=1e-5)
  continuous = ("mi_lower_bound", "fit", "map_cost", "ot_cost", "map_error")
  for key in continuous:
    if key in one["final"]:
      np.testing.assert_allclose(eight["final"][key], one["final"][key],
                                 rtol=1e-4, err_msg=key)


@pytest.mark.parametrize("name", ["wdm", "monge_gap"])
def test_batch_not_divisible_by_devices_is_refused(runs, name):
  one, eight = (r[name]["refusal"] for r in runs)
  assert one is None
  assert "train.batch_size 12 is not divisible" in eight
  assert "multiple of 8" in eight

"""1 vs 8 (fake CPU) devices: the OT runners' own training loops agree.

WDM (`experiments/wdm/run.py`) and the Monge-gap maps
(`experiments/monge_gap/run.py`) train in their own jitted loops, made
data-parallel with `common.sharding` the way the harness is. A few tiny
steps of each run in one subprocess per device count (the count is fixed
when JAX starts); the trained parameters and the logged losses must agree,
and a batch that 8 devices cannot split is refused with the setting's name.
"""

from __future__ import annotations

from concurrent import futures
import textwrap

import numpy as np
import pytest

from tests.conftest import REPO_ROOT
from tests.conftest import run_on_cpu_devices

# Two subprocesses of ~80 s of CPU each (compilation dominates).
pytestmark = pytest.mark.slow

_SCRIPT = textwrap.dedent("""
    import json, os, sys, time
    import jax, numpy as np
    from jax.flatten_util import ravel_pytree
    sys.path.insert(0, {root!r})
    from common import config as config_lib
    from common.core import logging_utils
    workdir = sys.argv[1]
    flat = lambda tree: np.asarray(ravel_pytree(tree)[0]).tolist()
    out = {{"devices": jax.device_count(), "seconds": {{}}}}
    t0 = time.time()

    from experiments.wdm import run as wdm_run
    cfg = config_lib.apply_overrides(
        config_lib.load_config("experiments/wdm/config.py"),
        {{"train.steps": 4, "train.log_every_steps": 2,
          "train.batch_size": 16, "wdm.hidden": (16,), "wdm.out_dim": 8}})
    _, params, metrics, _ = wdm_run.train_encoder(cfg, 2)
    out["wdm"] = {{"params": flat(params),
                   "loss": float(metrics["loss"])}}
    out["seconds"]["wdm"] = time.time() - t0; t0 = time.time()

    from experiments.monge_gap import run as mg_run
    cfg = config_lib.apply_overrides(
        config_lib.load_config("experiments/monge_gap/config.py"),
        {{"ot.steps": 4, "ot.batch_size": 16, "ot.hidden": (8,),
          "ot.log_every": 1, "ot.checkpoint_every": 4}})
    sample, _ = mg_run.make_task("gaussian")
    map_fn = mg_run.fit_mlp_map(cfg, os.path.join(workdir, "mg"), 0, sample)
    points = sample(jax.random.PRNGKey(99), 16)[0]
    out["monge_gap"] = {{
        "mapped": np.asarray(map_fn(points)).ravel().tolist(),
        "losses": [r["loss"] for r in logging_utils.read_jsonl(
            os.path.join(workdir, "mg", "metrics.jsonl"))]}}
    out["seconds"]["monge_gap"] = time.time() - t0

    out["refusals"] = {{}}
    for key, module, spec, setting in (
        ("wdm", wdm_run, "experiments/wdm/config.py", "train.batch_size"),
        ("monge_gap", mg_run, "experiments/monge_gap/config.py",
         "ot.batch_size")):
      cfg = config_lib.apply_overrides(config_lib.load_config(spec),
                                       {{setting: 12}})
      try:
        module.validate(cfg)
        out["refusals"][key] = None
      except ValueError as e:
        out["refusals"][key] = str(e)
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  script = _SCRIPT.format(root=REPO_ROOT)
  # Both processes at once: compilation dominates, and CI has 2 cores.
  with futures.ThreadPoolExecutor(2) as pool:
    one, eight = pool.map(
        lambda n: run_on_cpu_devices(script, n, str(tmp_path_factory.mktemp(
            f"devices_{n}"))), (1, 8))
  assert one["devices"] == 1 and eight["devices"] == 8
  return one, eight


def test_wdm_one_and_eight_devices_agree(runs):
  one, eight = (r["wdm"] for r in runs)
  # Only the order of the cross-device sums differs.
  np.testing.assert_allclose(eight["loss"], one["loss"], rtol=2e-5)
  np.testing.assert_allclose(eight["params"], one["params"], rtol=1e-4,
                             atol=1e-5)


def test_monge_gap_one_and_eight_devices_agree(runs):
  one, eight = (r["monge_gap"] for r in runs)
  assert len(one["losses"]) == 4
  np.testing.assert_allclose(eight["losses"], one["losses"], rtol=2e-5)
  np.testing.assert_allclose(eight["mapped"], one["mapped"], rtol=1e-4,
                             atol=1e-5)


def test_batch_not_divisible_by_devices_is_refused(runs):
  one, eight = (r["refusals"] for r in runs)
  assert one == {"wdm": None, "monge_gap": None}
  for key, setting in (("wdm", "train.batch_size"),
                       ("monge_gap", "ot.batch_size")):
    assert f"{setting} 12 is not divisible" in eight[key]
    assert "multiple of 8" in eight[key]

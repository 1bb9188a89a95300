"""Frozen teachers in `method_state` and PGD inside the step (issue 16).

The harness pieces of the distillation papers: teachers' params and model
state (BatchNorm statistics) handed to the method's `init` as
`ctx.extras["teachers"]` (the `distill` protocol's contract), kept in
`method_state`, run inside the jitted step next to a PGD attack under
`lax.fori_loop`. Checked with MTARD (two teachers, balance state updated
every step) on a BatchNorm CNN: 1 and 8 devices give the same trajectory,
a run killed mid-way resumes bit for bit, and the teachers never change.
"""

from __future__ import annotations

import numpy as np

from tests.conftest import REPO_ROOT
from tests.conftest import run_on_one_and_eight_devices

_SCRIPT = """
import json, os, sys
import jax
import numpy as np
sys.path.insert(0, __ROOT__)
from common import config as config_lib
from common.core import logging_utils
from common.protocols import build, supervised
from tests.conftest import sigterm_at

config = config_lib.apply_overrides(
    config_lib.load_config("experiments/mtard/config.py:digits"), {
        "model.name": "small_cnn", "model.kwargs": {"widths": (4, 8, 8)},
        "data.crop_padding": 1,
        "method.mtard.attack_steps": 2, "method.mtard.temp_lr": 0.05,
        "train.steps": 4, "train.batch_size": 32,
        "train.eval_batch_size": 120, "train.log_every_steps": 1,
        "train.checkpoint_every_steps": 2, "eval.robust.pgd_steps": 2})
base = build.setup(config_lib.apply_overrides(
    config, {"method.name": "cross_entropy"})).init_state()

def teacher(seed, shift):
  leaves, tree = jax.tree.flatten(jax.device_get(base.params))
  keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
  params = [x + 0.3 * np.asarray(jax.random.normal(k, x.shape))
            for x, k in zip(leaves, keys)]
  stats = jax.tree.map(lambda x: x + shift, jax.device_get(base.model_state))
  return {"params": jax.tree.unflatten(tree, params), "model_state": stats}

extras = {"teachers": {"natural": teacher(1, 0.2),
                         "robust": teacher(2, 0.1)}}
work = sys.argv[1]
straight = supervised.train(config, work + "/a", extras=extras,
                            show_progress=False)
train_log = lambda d: [
    {k: v for k, v in r.items() if k == "loss" or k.startswith("method/")}
    for r in logging_utils.read_jsonl(work + d + "/metrics.jsonl")
    if r["split"] == "train"]
_, state_a = supervised.restore(config, work + "/a", extras=extras)
equal = lambda a, b: jax.tree.all(jax.tree.map(
    lambda x, y: bool(np.array_equal(x, y)), jax.device_get(a), b))
out = {"devices": jax.device_count(), "final": straight.final,
       "log": train_log("/a"),
       "teachers_frozen": equal(state_a.method_state["teachers"],
                                extras["teachers"])}
if jax.device_count() == 1:   # resume: the state, not the mesh, matters
  first = supervised.train(config, work + "/b", extras=extras,
                           hooks=[sigterm_at(2)], show_progress=False)
  resumed = supervised.train(config, work + "/b", extras=extras,
                             show_progress=False)
  _, state_b = supervised.restore(config, work + "/b", extras=extras)
  out.update(preempted=first.status == "preempted",
             resumed_log_equal=train_log("/b") == out["log"],
             resumed_final_equal=resumed.final == straight.final,
             resumed_state_equal=equal(state_a, jax.device_get(state_b)))
print(json.dumps(out))
"""


def test_frozen_teachers_and_pgd_in_step_keep_devices_and_resume(
    tmp_path_factory):
  one, eight = run_on_one_and_eight_devices(
      _SCRIPT.replace("__ROOT__", repr(REPO_ROOT)), tmp_path_factory)
  assert one["preempted"] and one["resumed_log_equal"]
  assert one["resumed_final_equal"] and one["resumed_state_equal"]
  for r in (one, eight):
    assert r["teachers_frozen"] and len(r["log"]) == 4
    # The balance state moves inside the step (it is not a constant).
    assert len({(x["method/temp_adv"], x["method/temp_nat"])
                for x in r["log"]}) > 1
    assert len({x["method/w_adv"] for x in r["log"]}) > 1
  for key in ("loss", "method/w_adv", "method/kl_adv", "method/kl_nat"):
    np.testing.assert_allclose([x[key] for x in eight["log"]],
                               [x[key] for x in one["log"]], rtol=1e-4)
  for key in ("clean_acc", "fgsm_acc", "pgd2_acc"):
    # One of 360 test images may flip on a float-rounding tie.
    assert abs(eight["final"][key] - one["final"][key]) <= 100 / 360 + 1e-9

"""The TTA harness: reset, no retracing, 1 vs 8 devices, config checks."""

from __future__ import annotations

import textwrap

import chex
import jax
import numpy as np
import pytest

from algos.tta import baselines
from common import adapt
from common import adapt_study
from common import config as config_lib
from tests.algos.tta import tta_tiny as tiny
from tests.conftest import REPO_ROOT
from tests.conftest import run_on_cpu_devices


def _leaves_equal(a, b):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_reset_restores_params_optimizer_and_method_state():
  _, params, bstats = tiny.variables()
  xs = tiny.stream(3, 8)
  adapter, hp = tiny.build("eata", dict(
      e_margin_factor=0.9, d_margin=0.9, fisher_alpha=1.0, reweight=1.0,
      ma_momentum=0.9, capacity_buckets=(0.5,)),
      tiny.optim_config("adamw", lr=1e-2))
  state0 = adapter.init(params, bstats, jax.random.PRNGKey(0),
                        jax.numpy.asarray(tiny.stream(2, 8, seed=9)))
  snapshot = jax.tree.map(np.asarray, state0)
  s1, p1, _ = adapter.run(adapt.copy_state(state0), xs, hp)
  # The run changed params, Adam moments and EATA's moving average...
  assert not np.allclose(s1.params["bn"]["scale"], params["bn"]["scale"])
  assert any(not np.array_equal(a, b) for a, b in zip(
      jax.tree.leaves(s1.opt_state), jax.tree.leaves(state0.opt_state)))
  assert bool(s1.method_state["has_probs"])
  # ...the reset point did not move, and a run from it repeats exactly.
  _leaves_equal(state0, snapshot)
  s2, p2, _ = adapter.run(adapt.copy_state(state0), xs, hp)
  np.testing.assert_array_equal(p1, p2)
  _leaves_equal(s1, s2)


def test_no_retracing_across_batches_and_hyperparameters():
  _, params, bstats = tiny.variables()
  traced = chex.assert_max_traces(baselines.tent_adapt, n=1)
  method = adapt.TTAMethod(
      name="tent", trains="norm", init=baselines.no_state_init,
      adapt=traced, predict=lambda hp, ms, p, x, ctx: ctx.forward(p, x),
      hparams=baselines.no_hparams)
  adapter = adapt.make_adapter(tiny.TinyBN(), method, num_classes=3,
                               mean=(0.5,), std=(0.25,), optimizer="sgd")
  state = adapter.init(params, bstats, jax.random.PRNGKey(0), None)
  for lr, seed in ((0.1, 0), (0.3, 1), (0.05, 2)):
    hp = adapt.build_hparams(method, {}, tiny.optim_config(lr=lr), 3)
    state, _, _ = adapter.run(state, tiny.stream(4, 8, seed=seed), hp)
  chex.clear_trace_counter()


_SCRIPT = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {root!r})
    import jax, numpy as np
    from tests.algos.tta import tta_tiny as tiny
    _, params, bstats = tiny.variables()
    xs = tiny.stream(3, 16, seed=2)
    out = {{"devices": jax.device_count()}}
    for name, cfg in (
        ("tent", {{}}),
        ("eata", dict(e_margin_factor=0.95, d_margin=0.9, fisher_alpha=1.0,
                      reweight=1.0, ma_momentum=0.9,
                      capacity_buckets=(0.25, 0.5))),
        # The gate always fires: augmented teacher passes, EMA, restore.
        ("cotta", dict(ema=0.9, restore_prob=0.2, gate=2.0, num_aug=2))):
      adapter, hp = tiny.build(name, cfg, tiny.optim_config("adamw", 1e-2))
      state = adapter.init(params, bstats, jax.random.PRNGKey(0),
                           jax.numpy.asarray(tiny.stream(2, 16, seed=8)))
      state, preds, metrics = adapter.run(state, xs, hp)
      out[name] = {{"preds": np.asarray(preds).tolist(),
                   "scale": np.asarray(state.params["bn"]["scale"]).tolist(),
                   "rows": float(state.backward_rows)}}
    print(json.dumps(out))
""")


def _run(devices: int) -> dict:
  return run_on_cpu_devices(_SCRIPT.format(root=REPO_ROOT), devices)


def test_one_and_eight_devices_agree():
  """BatchNorm statistics, EATA's selection (and sub-batch gather) and
  CoTTA's per-batch augmentation draw and restore mask are over the global
  batch: 8 devices give the numbers of 1 (up to summation order)."""
  one, eight = _run(1), _run(8)
  assert one["devices"] == 1 and eight["devices"] == 8
  for name in ("tent", "eata", "cotta"):
    assert one[name]["preds"] == eight[name]["preds"], name
    assert one[name]["rows"] == eight[name]["rows"], name
    np.testing.assert_allclose(eight[name]["scale"], one[name]["scale"],
                               rtol=1e-4, atol=1e-6)


def test_study_config_checks_are_loud():
  config = config_lib.load_config("experiments/eata/config.py:digits_c")
  adapt_study.validate(config)
  bad = config_lib.apply_overrides(config, {"adapt.protocols": ("nope",)})
  with pytest.raises(ValueError, match="allowed"):
    adapt_study.validate(bad)
  bad = config_lib.apply_overrides(config, {"adapt.method": "tnet"})
  with pytest.raises(ValueError, match="registered"):
    adapt.get_tta_method("tnet", {})
  bad = config_lib.apply_overrides(config, {"adapt.protocols": ("openset",)})
  with pytest.raises(ValueError, match="data.classes"):
    adapt_study.validate(bad)
  with pytest.raises(ValueError, match="capacity_buckets"):
    adapt.get_tta_method("eata", {"capacity_buckets": (1.5,)})


def test_error_rate_ignores_unknown_classes():
  preds = np.array([[0, 1, 2, 0]])
  labels = np.array([[0, -1, 1, -1]])
  assert adapt_study.error_rate(preds, labels) == 50.0


@pytest.mark.parametrize("name,cfg", [
    ("tent", {}),
    ("cotta", dict(ema=0.99, restore_prob=0.1, gate=2.0, num_aug=2))])
def test_scan_and_host_loops_agree(name, cfg):
  """The two ways `run` walks a stream give the same predictions, state and
  metrics (up to float summation order), and neither touches the input."""
  _, params, bstats = tiny.variables()
  xs = tiny.stream(4, 8, seed=3)
  runs = {}
  for loop in ("scan", "host"):
    method = adapt.get_tta_method(name, cfg)
    adapter = adapt.make_adapter(tiny.TinyBN(), method, num_classes=3,
                                 mean=(0.5,), std=(0.25,), loop=loop)
    hp = adapt.build_hparams(method, cfg, tiny.optim_config("adamw", 1e-2),
                             3)
    state0 = adapter.init(params, bstats, jax.random.PRNGKey(0), None)
    snapshot = jax.tree.map(np.asarray, state0)
    runs[loop] = adapter.run(state0, xs, hp)
    _leaves_equal(state0, snapshot)
  (s_scan, p_scan, m_scan), (s_host, p_host, m_host) = runs["scan"], runs[
      "host"]
  np.testing.assert_array_equal(p_scan, p_host)
  for a, b in zip(jax.tree.leaves((s_scan, m_scan)),
                  jax.tree.leaves((s_host, m_host)), strict=True):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5,
                               atol=1e-6)


def test_unknown_loop_is_refused():
  method = adapt.get_tta_method("tent", {})
  with pytest.raises(ValueError, match="loop='while'"):
    adapt.make_adapter(tiny.TinyBN(), method, num_classes=3, mean=(0.5,),
                       std=(0.25,), loop="while")

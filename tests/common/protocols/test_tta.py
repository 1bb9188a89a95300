"""The TTA protocol: resets, loops, devices, config checks and resume."""

from __future__ import annotations

import os
import signal
import textwrap

import chex
import jax
import numpy as np
import pytest

from algos.tta import baselines
from algos.tta import eata
from common import config as config_lib
from common.core import method as method_lib
from common.data import streams as streams_lib
from common.protocols import runs
from common.protocols import tta
from common.protocols import tta_loop
from tests.algos.tta import tta_tiny as tiny
from tests.conftest import REPO_ROOT
from tests.conftest import run_on_cpu_devices

EATA_CFG = dict(e_margin_factor=0.9, d_margin=0.9, fisher_alpha=1.0,
                reweight=1.0, ma_momentum=0.9, capacity_buckets=(0.5,))


def _equal(a, b):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_reset_restores_params_optimizer_and_method_state():
  adapter = tiny.build("eata", EATA_CFG, "adamw", 1e-2,
                       clean=tiny.stream(2, 8, seed=9))
  snapshot = jax.tree.map(np.asarray, adapter.state0)
  xs = tiny.stream(3, 8)
  s1, p1, _ = tiny.walk(adapter, adapter.fresh(0), xs)
  # The run changed params, Adam moments and EATA's moving average...
  assert not np.allclose(s1.params["bn"]["scale"],
                         snapshot.params["bn"]["scale"])
  assert any(not np.array_equal(a, b) for a, b in zip(
      jax.tree.leaves(s1.opt_state), jax.tree.leaves(snapshot.opt_state)))
  assert bool(s1.method_state["has_probs"])
  # ...the reset point did not move, a run from it repeats exactly, and it
  # is what re-initialising from the source params gives.
  _equal(adapter.state0, snapshot)
  s2, p2, _ = tiny.walk(adapter, adapter.fresh(0), xs)
  np.testing.assert_array_equal(p1, p2)
  _equal(s1, s2)
  src = tiny.source()
  again = adapter.setup.init_state(params=src.params,
                                   model_state=src.model_state)
  _equal(again, adapter.state0)


def test_no_retracing_across_batches_and_hyperparameters():
  traced = chex.assert_max_traces(baselines.tent_apply, n=1)
  fork = baselines.TENT._replace(apply=traced)
  adapter = tiny.build("tent", {}, fork=fork)
  state = adapter.fresh(0)
  for lr, seed in ((0.1, 0), (0.3, 1), (0.05, 2)):
    hp = jax.tree.map(lambda v: v, adapter.setup.hparams)
    hp["schedule"]["learning_rate"] = jax.numpy.float32(lr)
    for x in tiny.stream(2, 8, seed=seed):
      state, _, _ = adapter.setup.train_step(state, {"image": x}, hp)
  chex.clear_trace_counter()


_SCRIPT = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {root!r})
    import jax, numpy as np
    from tests.algos.tta import tta_tiny as tiny
    xs = tiny.stream(3, 16, seed=2)
    out = {{"devices": jax.device_count()}}
    for name, cfg in (
        ("tent", {{}}),
        ("eata", dict(e_margin_factor=0.95, d_margin=0.9, fisher_alpha=1.0,
                      reweight=1.0, ma_momentum=0.9,
                      capacity_buckets=(0.25, 0.5))),
        # The gate always fires: augmented teacher passes, EMA, restore.
        ("cotta", dict(ema=0.9, restore_prob=0.2, gate=2.0, num_aug=2))):
      adapter = tiny.build(name, cfg, "adamw", 1e-2, batch=16,
                           clean=tiny.stream(2, 16, seed=8))
      state, preds, metrics = tiny.walk(adapter, adapter.fresh(0), xs)
      out[name] = {{"preds": np.asarray(preds).tolist(),
                   "scale": np.asarray(state.params["bn"]["scale"]).tolist(),
                   "rows": float(np.sum(metrics.get("method/backward_rows",
                                                    0.0)))}}
    print(json.dumps(out))
""")


def test_one_and_eight_devices_agree():
  """BatchNorm statistics, EATA's selection (and sub-batch gather) and
  CoTTA's per-batch augmentation draw and restore mask are over the global
  batch: 8 devices give the numbers of 1 (up to summation order)."""
  one = run_on_cpu_devices(_SCRIPT.format(root=REPO_ROOT), 1)
  eight = run_on_cpu_devices(_SCRIPT.format(root=REPO_ROOT), 8)
  assert one["devices"] == 1 and eight["devices"] == 8
  for name in ("tent", "eata", "cotta"):
    assert one[name]["preds"] == eight[name]["preds"], name
    assert one[name]["rows"] == eight[name]["rows"], name
    np.testing.assert_allclose(eight[name]["scale"], one[name]["scale"],
                               rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name,cfg", [
    ("tent", {}),
    ("cotta", dict(ema=0.99, restore_prob=0.1, gate=2.0, num_aug=2))])
def test_scan_and_host_loops_agree(name, cfg):
  """The two ways a stream is walked (a jitted `lax.scan` over
  `train_step_fn`, a host loop of jitted steps) give the same predictions,
  state and metrics up to float summation order."""
  xs = tiny.stream(4, 8, seed=3)
  out = {}
  for loop in ("scan", "host"):
    adapter = tiny.build(name, cfg, "adamw", 1e-2, loop=loop)
    assert adapter.loop == loop
    out[loop] = tiny.walk(adapter, adapter.fresh(0), xs)
  (s_scan, p_scan, m_scan), (s_host, p_host, m_host) = out["scan"], out[
      "host"]
  np.testing.assert_array_equal(p_scan, p_host)
  for a, b in zip(jax.tree.leaves((s_scan, m_scan)),
                  jax.tree.leaves((s_host, m_host)), strict=True):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5,
                               atol=1e-6)


def test_config_validation_names_the_field_and_what_is_allowed():
  config = config_lib.load_config("experiments/eata/config.py:digits_c")
  tta.validate(config)
  cases = [
      ({"adapt.protocols": ("nope",)}, r"adapt.protocols.*'reset'"),
      ({"adapt.protocols": ()}, "adapt.protocols"),
      ({"adapt.method": "tnet"}, r"adapt.method='tnet'.*registered"),
      ({"adapt.method": "cotta"}, r"config.tta has no section.*cotta"),
      ({"adapt.protocols": ("openset",)}, "data.classes"),
      ({"adapt.batch_size": 0}, r"adapt.batch_size=0.*>= 1"),
      ({"adapt.rounds": 0}, r"adapt.rounds=0"),
      ({"adapt.severity": 0}, r"adapt.severity"),
      ({"adapt.optim.learning_rate": -1.0}, r"learning_rate=-1.0.*>= 0"),
      ({"adapt.optim.name": "lamb"}, r"adapt.optim.name='lamb'.*'sgd'"),
      ({"adapt.optim.b2": 1.5}, r"adapt.optim.b2=1.5"),
      ({"adapt.loop": "while"}, r"adapt.loop='while'.*'host'"),
      ({"adapt.init_size": -1}, r"adapt.init_size"),
      ({"data.source": "generator"}, r"data.source='generator'"),
      ({"train.batch_size": 0}, r"train.batch_size"),   # the source's
      # The method's declared ranges, under config.tta.<method>.
      ({"tta.eata.d_margin": -0.1}, r"tta.eata.d_margin=-0.1.*>= 0"),
      ({"tta.eata.ma_momentum": 1.5}, r"tta.eata.ma_momentum=1.5"),
      ({"tta.eata.capacity_buckets": (0.5, 1.0)},
       r"config.tta.eata.*capacity_buckets=\(0.5, 1.0\).*between 0 and 1"),
  ]
  for overrides, match in cases:
    tiny.assert_config_error(config, overrides, match)
  with pytest.raises(config_lib.ConfigError, match="unknown config key"):
    config_lib.apply_overrides(config, {"adapt.fisher_size": 480})
  with pytest.raises(ValueError, match="capacity_buckets"):
    eata.make({"capacity_buckets": (1.5,)})
  assert isinstance(eata.make(config.tta.eata.to_dict()), method_lib.Method)


def test_error_rate_ignores_unknown_classes():
  preds = np.array([[0, 1, 2, 0]])
  labels = np.array([[0, -1, 1, -1]])
  assert streams_lib.error_rate(preds, labels) == 50.0


def test_source_dir_is_shared_by_the_arms_of_a_study(tmp_path):
  config = config_lib.load_config("experiments/eata/config.py:digits_c")
  study = str(tmp_path / "study")
  assert tta.source_dir(config, os.path.join(study, "eta", "seed_1")) == (
      os.path.join(study, "source_models"))
  shared = config_lib.apply_overrides(config, {"adapt.source_dir": "/s"})
  assert tta.source_dir(shared, study) == "/s"
  # eata and cotta train the same source model.
  other = config_lib.load_config("experiments/cotta/config.py:digits_c")
  assert config_lib.fingerprint(tta.source_config(config, 1)) == (
      config_lib.fingerprint(tta.source_config(other, 1)))


def _sigterm_after(monkeypatch, calls: int):
  """SIGTERM to this process after `calls` streams were adapted."""
  original = tta_loop.Adapter.adapt
  count = [0]

  def adapt(self, state, stream):
    out = original(self, state, stream)
    count[0] += 1
    if count[0] == calls:
      os.kill(os.getpid(), signal.SIGTERM)
    return out
  monkeypatch.setattr(tta_loop.Adapter, "adapt", adapt)


def test_preempted_runs_resume_to_the_straight_result(tmp_path, monkeypatch):
  """SIGTERM in the reset phase and twice in the sequential rounds (the
  state checkpointed mid-round and at a round boundary): the resumed run
  ends with exactly the metrics of a run never stopped."""
  config = config_lib.load_config("experiments/eata/config.py:digits_c")
  config = config_lib.apply_overrides(config, {
      "train.steps": 3, "adapt.max_batches": 2, "adapt.init_size": 120,
      "adapt.corruptions": ("gaussian_noise", "shot_noise"),
      "adapt.protocols": ("reset", "lifelong"), "adapt.rounds": 2,
      "adapt.source_dir": str(tmp_path / "source")})
  straight = tta.run(config, str(tmp_path / "straight"), show_progress=False)
  assert straight.status == "finished"
  assert set(straight.final) >= {
      "reset/mean/error", "continual/r2/shot_noise/error", "clean/before",
      "clean/after_r1", "clean/after_last", "backward/samples",
      "continual/r1/fisher_penalty", "source/error"}
  work = str(tmp_path / "resumed")
  for stop_after in (1, 2, 2):   # reset unit 1; round 1 unit 1; round 2
    with monkeypatch.context() as m:
      _sigterm_after(m, stop_after)
      result = tta.run(config, work, show_progress=False)
    assert result.status == "preempted"
  with pytest.raises(runs.WorkdirError, match="learning_rate"):
    tta.run(config_lib.apply_overrides(
        config, {"adapt.optim.learning_rate": 0.1}), work)
  resumed = tta.run(config, work, show_progress=False)
  assert resumed.status == "finished"
  assert resumed.final == straight.final
  # A finished run is served from its summary.
  assert tta.run(config, work).final == straight.final


def test_tables_of_a_study_on_some_arms_and_fewer_rounds():
  """The layouts list every arm and 10 rounds; a study of one arm over 2
  rounds shows that arm and r1, r2 only (`drop_empty`); per-corruption
  cells carry no std, the mean does."""
  from common.study import tables  # pylint: disable=g-import-not-at-top
  config = config_lib.load_config("experiments/cotta/config.py:digits_c")
  corrupt, _, rounds = config.study.tables
  runs = {"cotta_always_aug": {
      s: {**{f"continual/r1/{c}/error": 10.0 + s
             for c in config.adapt.corruptions},
          "continual/r1/mean/error": 10.0 + s,
          "continual/r2/mean/error": 20.0 + 2 * s} for s in (0, 1)}}
  text = tables.spec_table(runs, rounds).splitlines()
  assert text[2:] == ["| arm | r1 | r2 |", "|---|---|---|",
                      "| cotta_always_aug | 10.5 +- 0.7 | 21.0 +- 1.4 |"]
  row = tables.spec_table(runs, corrupt).splitlines()[-1]
  assert row.startswith("| cotta_always_aug | 10.5 | 10.5 |")
  assert row.endswith("| 10.5 +- 0.7 |")
  assert tables.spec_table(runs, corrupt).splitlines()[2].startswith(
      "| arm | gauss | shot |")

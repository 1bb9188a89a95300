"""Each TTA method's update against hand-computed (numpy, float64) values.

The tiny model is flatten -> BatchNorm -> Dense, so the oracle forward with
test-batch statistics and finite-difference gradients fit in a few lines
(`tta_tiny`). SGD with lr 0.5 and no momentum makes an update `-0.5 * grad`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from algos.tta import cotta
from algos.tta import cotta_augment
from algos.tta import eata
from algos.tta import ostta_woc
from common import adapt
from tests.algos.tta import tta_tiny as tiny

EATA_CFG = dict(e_margin_factor=0.4, d_margin=0.4, fisher_alpha=0.0,
                reweight=1.0, ma_momentum=0.9, capacity_buckets=(0.25, 0.5))
COTTA_CFG = dict(ema=0.9, restore_prob=0.0, gate=0.0, num_aug=2)


def _init(adapter, params, bstats, clean=None, seed=0):
  return adapter.init(params, bstats, jax.random.PRNGKey(seed), clean)


def test_trainable_mask_selects_norm_affine_only():
  _, params, _ = tiny.variables()
  mask = adapt.trainable_mask(params, "norm")
  assert mask == {"bn": {"scale": True, "bias": True},
                  "head": {"kernel": False, "bias": False}}
  assert all(jax.tree.leaves(adapt.trainable_mask(params, "all")))
  assert not any(jax.tree.leaves(adapt.trainable_mask(params, "none")))
  with pytest.raises(ValueError, match="no normalisation"):
    adapt.trainable_mask({"head": {"kernel": np.ones((2, 2))}}, "norm")


def test_source_and_bn_adapt_predictions():
  model, params, bstats = tiny.variables()
  x = tiny.stream(1, 8)
  for name, expect in (("bn_adapt", tiny.np_forward(params, x[0])),):
    adapter, hp = tiny.build(name, {})
    state = _init(adapter, params, bstats)
    _, logits, _ = adapter.step(state, x[0], hp)
    np.testing.assert_allclose(logits, expect, rtol=1e-4, atol=1e-5)
  adapter, hp = tiny.build("source", {})
  _, logits, _ = adapter.step(_init(adapter, params, bstats), x[0], hp)
  ref = model.apply({"params": params, **bstats},
                    (x[0] / 255.0 - 0.5) / 0.25, train=False)["logits"]
  np.testing.assert_allclose(logits, ref, rtol=1e-5, atol=1e-6)


def test_tent_update_is_minus_lr_times_entropy_gradient():
  _, params, bstats = tiny.variables()
  x = tiny.stream(1, 8)[0]
  adapter, hp = tiny.build("tent", {})
  state = _init(adapter, params, bstats)
  new, logits, metrics = adapter.step(state, x, hp)
  # Reported prediction: the forward before the update.
  np.testing.assert_allclose(logits, tiny.np_forward(params, x), rtol=1e-4,
                             atol=1e-5)
  loss = lambda p: tiny.np_entropy(tiny.np_forward(p, x)).mean()
  np.testing.assert_allclose(metrics["loss"], loss(params), rtol=1e-5)
  grad = tiny.np_bn_grad(loss, params)
  for k in ("scale", "bias"):
    np.testing.assert_allclose(new.params["bn"][k],
                               params["bn"][k] - 0.5 * grad[k], rtol=1e-4,
                               atol=1e-6)
  # The head is frozen.
  np.testing.assert_array_equal(new.params["head"]["kernel"],
                                params["head"]["kernel"])
  assert float(new.backward_samples) == 8.0


def test_eata_selection_weights_and_moving_average_by_hand():
  _, params, bstats = tiny.variables()
  xs = tiny.stream(2, 8, seed=3)
  cfg = dict(EATA_CFG, e_margin_factor=0.95, d_margin=0.99)
  adapter, hp = tiny.build("eata", cfg)
  state = _init(adapter, params, bstats)
  e0 = 0.95 * math.log(3)
  # Batch 1: only the entropy filter (no moving average yet).
  logits = tiny.np_forward(params, xs[0])
  ent = tiny.np_entropy(logits)
  sel = ent < e0
  assert 0 < sel.sum() < 8
  w = np.where(sel, np.exp(e0 - ent), 0.0)
  loss = lambda p: (np.where(sel, np.exp(e0 - ent), 0.0) * tiny.np_entropy(
      tiny.np_forward(p, xs[0]))).sum() / sel.sum()
  state1, _, m = adapter.step(state, xs[0], hp)
  np.testing.assert_allclose(m["loss"], (w * ent).sum() / sel.sum(),
                             rtol=1e-4)
  assert float(m["backward_samples"]) == sel.sum()
  probs = np.exp(logits - logits.max(-1, keepdims=True))
  probs /= probs.sum(-1, keepdims=True)
  np.testing.assert_allclose(state1.method_state["probs"],
                             probs[sel].mean(0), rtol=1e-4)
  if sel.sum() > 4:  # version 1 (full batch): exact official gradient
    grad = tiny.np_bn_grad(loss, params)
    np.testing.assert_allclose(state1.params["bn"]["scale"],
                               params["bn"]["scale"] - 0.5 * grad["scale"],
                               rtol=1e-3, atol=1e-6)
  # Batch 2: the redundancy filter against the moving average.
  p1 = jax.tree.map(np.asarray, state1.params)
  logits2 = tiny.np_forward(p1, xs[1])
  ent2 = tiny.np_entropy(logits2)
  pr2 = np.exp(logits2 - logits2.max(-1, keepdims=True))
  pr2 /= pr2.sum(-1, keepdims=True)
  ma = np.asarray(state1.method_state["probs"])
  cos = pr2 @ ma / (np.linalg.norm(pr2, axis=-1) * np.linalg.norm(ma))
  sel2 = (ent2 < e0) & (np.abs(cos) < 0.99)
  state2, _, m2 = adapter.step(state1, xs[1], hp)
  assert float(m2["backward_samples"]) == sel2.sum()
  expect_ma = (0.9 * ma + 0.1 * pr2[sel2].mean(0) if sel2.any() else ma)
  np.testing.assert_allclose(state2.method_state["probs"], expect_ma,
                             rtol=1e-4)


def test_eata_sub_batch_backward_matches_version_2_and_saves_rows():
  _, params, bstats = tiny.variables()
  x = tiny.stream(1, 8, seed=5)[0]
  # A margin that keeps exactly the 2 most confident samples.
  ent = tiny.np_entropy(tiny.np_forward(params, x))
  margin = np.sort(ent)[2] / math.log(3)
  cfg = dict(EATA_CFG, e_margin_factor=float(margin), d_margin=2.0)
  adapter, hp = tiny.build("eata", cfg)
  new, _, m = adapter.step(_init(adapter, params, bstats), x, hp)
  assert float(m["backward_samples"]) == 2.0
  assert float(m["backward_rows"]) == 2.0   # capacity 0.25 * 8
  e0 = margin * math.log(3)
  idx = np.argsort(ent)[:2]
  w = np.exp(e0 - ent[idx])
  # Version 2: forward and backward of the selected samples only (their
  # own BatchNorm statistics).
  loss = lambda p: (w * tiny.np_entropy(tiny.np_forward(p, x[idx]))).sum() / 2
  grad = tiny.np_bn_grad(loss, params)
  for k in ("scale", "bias"):
    np.testing.assert_allclose(new.params["bn"][k],
                               params["bn"][k] - 0.5 * grad[k], rtol=1e-3,
                               atol=1e-6)


def test_eata_without_selection_weights_and_fisher_is_tent():
  _, params, bstats = tiny.variables()
  xs = tiny.stream(4, 8, seed=1)
  off = dict(EATA_CFG, e_margin_factor=1e6, d_margin=1e6, reweight=0.0,
             fisher_alpha=0.0)
  for optim in (tiny.optim_config("adamw", lr=1e-2),):
    a_eata, hp_eata = tiny.build("eata", off, optim)
    a_tent, hp_tent = tiny.build("tent", {}, optim)
    s_eata, p_eata, _ = a_eata.run(_init(a_eata, params, bstats), xs, hp_eata)
    s_tent, p_tent, _ = a_tent.run(_init(a_tent, params, bstats), xs, hp_tent)
    np.testing.assert_array_equal(p_eata, p_tent)
    for a, b in zip(jax.tree.leaves(s_eata.params),
                    jax.tree.leaves(s_tent.params)):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_eata_skips_the_step_when_nothing_is_selected():
  _, params, bstats = tiny.variables()
  x = tiny.stream(1, 8)[0]
  adapter, hp = tiny.build("eata", dict(EATA_CFG, e_margin_factor=1e-6),
                           tiny.optim_config("adamw", lr=1e-2))
  state = _init(adapter, params, bstats)
  new, _, m = adapter.step(state, x, hp)
  assert float(m["backward_rows"]) == 0.0
  for a, b in zip(jax.tree.leaves((new.params, new.opt_state)),
                  jax.tree.leaves((state.params, state.opt_state))):
    np.testing.assert_array_equal(a, b)


def test_eata_fisher_is_mean_squared_pseudo_label_gradient():
  model, params, bstats = tiny.variables()
  clean = tiny.stream(3, 8, seed=7)
  adapter, _ = tiny.build("eata", dict(EATA_CFG, fisher_alpha=2.0))
  state = _init(adapter, params, bstats, jnp.asarray(clean))
  fisher = state.method_state["fisher"]
  expect = {"scale": 0.0, "bias": 0.0}
  for x in clean:
    def ce(p):
      z = tiny.np_forward(p, x)
      y = z.argmax(-1)
      z = z - z.max(-1, keepdims=True)
      logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
      return -logp[np.arange(len(y)), y].mean()
    g = tiny.np_bn_grad(ce, params)
    expect = {k: expect[k] + g[k] ** 2 / 3 for k in expect}
  for k in ("scale", "bias"):
    np.testing.assert_allclose(fisher["bn"][k], expect[k], rtol=1e-3,
                               atol=1e-8)
  # Penalty gradient 2 * alpha * F * (theta - theta_0) once params moved.
  moved = jax.tree.map(lambda p: p + 0.1, params)
  pen = eata.fisher_penalty(moved, state.method_state,
                            adapt.trainable_mask(params, "norm"))
  np.testing.assert_allclose(
      pen, sum(float(np.sum(expect[k] * 0.01)) for k in expect), rtol=1e-3)


def test_cotta_gate_off_restore_off_is_plain_ema_teacher():
  _, params, bstats = tiny.variables()
  xs = tiny.stream(4, 8, seed=2)
  adapter, hp_off = tiny.build("cotta", COTTA_CFG)
  # Student == teacher gives a zero gradient, so one gated step first moves
  # the student away (the gate is a traced number: no recompilation).
  hp_on = jax.tree.map(lambda v: v, hp_off)
  hp_on["method"]["gate"] = jnp.float32(1.1)
  state, _, m = adapter.step(_init(adapter, params, bstats), xs[0], hp_on)
  assert float(m["gate_fired"]) == 1.0
  student = jax.tree.map(np.asarray, state.params)
  teacher = jax.tree.map(np.asarray, state.method_state["teacher"])
  for x in xs[1:]:
    new, logits, m = adapter.step(state, x, hp_off)
    assert float(m["gate_fired"]) == 0.0
    # Reported: the teacher's plain prediction before the update.
    np.testing.assert_allclose(logits, tiny.np_forward(teacher, x),
                               rtol=1e-4, atol=1e-5)
    # Student: one SGD step on CE(softmax(teacher), student); all params.
    target = tiny.np_forward(teacher, x)
    t = np.exp(target - target.max(-1, keepdims=True))
    t /= t.sum(-1, keepdims=True)
    def loss(p):
      z = tiny.np_forward(p, x)
      z = z - z.max(-1, keepdims=True)
      return -(t * (z - np.log(np.exp(z).sum(-1, keepdims=True)))).sum(
          -1).mean()
    grad = tiny.np_bn_grad(loss, student)
    np.testing.assert_allclose(new.params["bn"]["scale"],
                               student["bn"]["scale"] - 0.5 * grad["scale"],
                               rtol=1e-3, atol=1e-6)
    assert not np.allclose(new.params["head"]["kernel"],
                           student["head"]["kernel"])  # CoTTA trains all
    student = jax.tree.map(np.asarray, new.params)
    teacher = jax.tree.map(lambda a, b: 0.9 * a + 0.1 * b, teacher, student)
    for a, b in zip(jax.tree.leaves(new.method_state["teacher"]),
                    jax.tree.leaves(teacher)):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    state = new


def test_cotta_gate_fires_and_averages_augmented_teacher_logits():
  _, params, bstats = tiny.variables()
  x = tiny.stream(1, 8, seed=4)[0]
  adapter, hp = tiny.build("cotta", dict(COTTA_CFG, gate=1.1))
  state = _init(adapter, params, bstats)
  _, logits, m = adapter.step(state, x, hp)
  assert float(m["gate_fired"]) == 1.0
  # Recompute: the same keys as the method (split of the step's key).
  rng = jax.random.fold_in(state.rng, 0)
  rng_adapt, _ = jax.random.split(rng)
  rng_t, _ = jax.random.split(rng_adapt)
  keys = jax.random.split(rng_t, 2)
  xf = x.astype(np.float32) / 255.0
  augment = jax.jit(cotta_augment.augment)
  aug = [np.asarray(augment(k, xf)) for k in keys]
  expect = np.mean([tiny.np_forward(params, np.round(a * 255.0).astype(
      np.uint8)) for a in aug], 0)
  # The oracle re-quantises the augmented images to uint8: loose tolerance.
  np.testing.assert_allclose(logits, expect, atol=0.05)


def test_cotta_stochastic_restore_extremes():
  _, params, _ = tiny.variables()
  moved = jax.tree.map(lambda p: p + 1.0, params)
  key = jax.random.PRNGKey(0)
  for prob, expect in ((0.0, moved), (1.0, params)):
    out = cotta.stochastic_restore(moved, params, prob, key)
    for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(expect)):
      np.testing.assert_array_equal(a, b)
  half = cotta.stochastic_restore(
      {"w": jnp.ones((100, 100))}, {"w": jnp.zeros((100, 100))}, 0.3, key)
  assert abs(float(jnp.mean(half["w"] == 0)) - 0.3) < 0.02


def test_cotta_augment_keeps_range_and_shape():
  x = jax.random.uniform(jax.random.PRNGKey(1), (4, 8, 8, 3))
  y = jax.jit(cotta_augment.augment)(jax.random.PRNGKey(2), x)
  assert y.shape == x.shape
  assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
  assert not np.allclose(y, x)


def test_ostta_selection_by_hand_and_select_off_is_tent():
  _, params, bstats = tiny.variables()
  xs = tiny.stream(2, 8, seed=6)
  adapter, hp = tiny.build("ostta", {})
  state = _init(adapter, params, bstats)
  state, _, _ = adapter.step(state, xs[0], hp)  # adapted != original now
  p1 = jax.tree.map(np.asarray, state.params)
  z_o = tiny.np_forward(params, xs[1])
  z_a = tiny.np_forward(p1, xs[1])
  keep = np.asarray(ostta_woc.confidence_kept(z_o, z_a))
  soft = lambda z: np.exp(z - z.max(-1, keepdims=True)) / np.exp(
      z - z.max(-1, keepdims=True)).sum(-1, keepdims=True)
  c_o = z_o.argmax(-1)
  np.testing.assert_array_equal(
      keep, soft(z_a)[np.arange(8), c_o] >= soft(z_o).max(-1))
  new, _, m = adapter.step(state, xs[1], hp)
  assert float(m["selected"]) == keep.sum()
  loss = lambda p: (keep * tiny.np_entropy(tiny.np_forward(p, xs[1]))).sum(
  ) / max(keep.sum(), 1)
  grad = tiny.np_bn_grad(loss, p1)
  np.testing.assert_allclose(new.params["bn"]["bias"],
                             p1["bn"]["bias"] - 0.5 * grad["bias"],
                             rtol=1e-3, atol=1e-6)
  # select=0 is plain Tent.
  a_o, hp_o = tiny.build("ostta", {"select": 0.0})
  a_t, hp_t = tiny.build("tent", {})
  s_o, _, _ = a_o.run(_init(a_o, params, bstats), xs, hp_o)
  s_t, _, _ = a_t.run(_init(a_t, params, bstats), xs, hp_t)
  for a, b in zip(jax.tree.leaves(s_o.params), jax.tree.leaves(s_t.params)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_cotta_augment_flip_switch():
  """`hflip=False` draws the same augmentation minus the mirror: with the
  noise off, each flipped output is the mirror of the unflipped one."""
  x = jax.random.uniform(jax.random.PRNGKey(0), (2, 8, 8, 3))
  flipped = 0
  for k in range(8):
    key = jax.random.PRNGKey(k)
    on = np.asarray(cotta_augment.augment(key, x, 0.0, hflip=True))
    off = np.asarray(cotta_augment.augment(key, x, 0.0, hflip=False))
    if np.allclose(on, off[:, :, ::-1], atol=1e-6) and not np.allclose(
        on, off, atol=1e-6):
      flipped += 1
    else:
      np.testing.assert_allclose(on, off, atol=1e-6)
  assert 0 < flipped < 8

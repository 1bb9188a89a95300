"""Each TTA method's update against hand-computed (numpy, float64) values.

The tiny model is flatten -> BatchNorm -> Dense, so the oracle forward with
test-batch statistics and finite-difference gradients fit in a few lines
(`tta_tiny`). SGD with lr 0.5 and no momentum makes an update `-0.5 * grad`.
Every step is the one train step the TTA protocol runs.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from algos.tta import cotta
from algos.tta import cotta_augment
from algos.tta import eata
from algos.tta import ostta_woc
from common.core import method as method_lib
from tests.algos.tta import tta_tiny as tiny

EATA_CFG = dict(e_margin_factor=0.4, d_margin=0.4, fisher_alpha=0.0,
                reweight=1.0, ma_momentum=0.9, capacity_buckets=(0.25, 0.5))
COTTA_CFG = dict(ema=0.9, restore_prob=0.0, gate=0.0, num_aug=2)


def _close(a, b, **kw):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), **kw)


def test_norm_mask_selects_batch_norm_affine_only():
  _, params, _ = tiny.variables()
  assert method_lib.trainable_mask(params, "norm") == {
      "bn": {"scale": True, "bias": True},
      "head": {"kernel": False, "bias": False}}


def test_source_and_bn_adapt_predictions():
  model, params, bstats = tiny.variables()
  x = tiny.stream(1, 8)[0]
  adapter = tiny.build("bn_adapt", {})
  _, logits, _ = tiny.step(adapter, adapter.fresh(0), x)
  np.testing.assert_allclose(logits, tiny.np_forward(params, x), rtol=1e-4,
                             atol=1e-5)
  adapter = tiny.build("source", {})
  new, logits, _ = tiny.step(adapter, adapter.fresh(0), x)
  ref = model.apply({"params": params, **bstats}, (x / 255.0 - 0.5) / 0.25,
                    train=False)["logits"]
  np.testing.assert_allclose(logits, ref, rtol=1e-5, atol=1e-6)
  # Neither trains nor touches the BatchNorm running averages.
  _close((new.params, new.model_state), (params, bstats), rtol=0, atol=0)


def test_tent_update_is_minus_lr_times_entropy_gradient():
  _, params, bstats = tiny.variables()
  x = tiny.stream(1, 8)[0]
  adapter = tiny.build("tent", {})
  new, logits, metrics = tiny.step(adapter, adapter.fresh(0), x)
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
  # The head is frozen; the running averages are never updated.
  np.testing.assert_array_equal(new.params["head"]["kernel"],
                                params["head"]["kernel"])
  _close(new.model_state, bstats, rtol=0, atol=0)
  assert metrics["backward_samples"] == 8.0


def test_eata_selection_weights_and_moving_average_by_hand():
  _, params, bstats = tiny.variables()
  xs = tiny.stream(2, 8, seed=3)
  # A margin between the 6th and 7th smallest entropies of batch 1: six
  # samples pass, more than the largest capacity (4 of 8), so the
  # backward reuses the full-batch forward (the official version 1).
  ent = tiny.np_entropy(tiny.np_forward(params, xs[0]))
  e0 = float(np.mean(np.sort(ent)[5:7]))
  cfg = dict(EATA_CFG, e_margin_factor=e0 / math.log(3), d_margin=0.99)
  adapter = tiny.build("eata", cfg)
  logits = tiny.np_forward(params, xs[0])
  sel = ent < e0
  assert sel.sum() == 6
  w = np.where(sel, np.exp(e0 - ent), 0.0)
  state1, _, m = tiny.step(adapter, adapter.fresh(0), xs[0])
  np.testing.assert_allclose(m["loss"], (w * ent).sum() / 6, rtol=1e-4)
  assert m["backward_samples"] == 6 and m["backward_rows"] == 8
  np.testing.assert_allclose(state1.method_state["probs"],
                             tiny.np_softmax(logits)[sel].mean(0), rtol=1e-4)
  loss = lambda p: (w * tiny.np_entropy(tiny.np_forward(p, xs[0]))).sum() / 6
  grad = tiny.np_bn_grad(loss, params)
  for k in ("scale", "bias"):
    np.testing.assert_allclose(state1.params["bn"][k],
                               params["bn"][k] - 0.5 * grad[k], rtol=1e-3,
                               atol=1e-6)
  # Batch 2: the redundancy filter against the moving average.
  p1 = jax.tree.map(np.asarray, state1.params)
  logits2 = tiny.np_forward(p1, xs[1])
  ent2, pr2 = tiny.np_entropy(logits2), tiny.np_softmax(logits2)
  ma = np.asarray(state1.method_state["probs"])
  cos = pr2 @ ma / (np.linalg.norm(pr2, axis=-1) * np.linalg.norm(ma))
  sel2 = (ent2 < e0) & (np.abs(cos) < 0.99)
  state2, _, m2 = tiny.step(adapter, state1, xs[1])
  assert m2["backward_samples"] == sel2.sum()
  expect_ma = (0.9 * ma + 0.1 * pr2[sel2].mean(0) if sel2.any() else ma)
  np.testing.assert_allclose(state2.method_state["probs"], expect_ma,
                             rtol=1e-4)


def _np_eata_walk(params, xs, e0, d_margin, lr=0.5):
  """Official EATA (version 1) in float64 numpy: per batch, selection by
  entropy and by cosine to the moving average, the masked re-weighted
  entropy back-propagated through the whole batch (finite differences),
  an SGD step only when something is selected."""
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
  ma, counts = None, []
  for x in xs:
    logits = tiny.np_forward(p, x)
    ent, prob = tiny.np_entropy(logits), tiny.np_softmax(logits)
    sel = ent < e0
    if ma is not None:
      cos = prob @ ma / np.maximum(
          np.linalg.norm(prob, axis=-1) * np.linalg.norm(ma), 1e-8)
      sel &= np.abs(cos) < d_margin
    counts.append(int(sel.sum()))
    if not sel.any():
      continue
    mean = prob[sel].mean(0)
    ma = mean if ma is None else 0.9 * ma + 0.1 * mean
    w = np.where(sel, np.exp(e0 - ent), 0.0)
    loss = lambda q, x=x, w=w, n=sel.sum(): (
        w * tiny.np_entropy(tiny.np_forward(q, x))).sum() / n
    grad = tiny.np_bn_grad(loss, p)
    for k in ("scale", "bias"):
      p["bn"][k] = p["bn"][k] - lr * grad[k]
  return p, counts


def test_eata_default_is_the_official_full_batch_backward():
  """Without `capacity_buckets` (the default) six steps equal the official
  update (the masked loss back-propagated through the full batch), also on
  batches with few samples selected, where the opt-in sub-batch backward
  (its own BatchNorm statistics) gives other parameters."""
  _, params, _ = tiny.variables()
  xs = tiny.stream(6, 8, seed=11)
  ent = tiny.np_entropy(tiny.np_forward(params, xs[0]))
  e0 = float(np.mean(np.sort(ent)[2:4]))   # 3 of 8 pass on batch 1
  cfg = dict(EATA_CFG, e_margin_factor=e0 / math.log(3), d_margin=0.995)
  del cfg["capacity_buckets"]
  expect, counts = _np_eata_walk(params, xs, e0, 0.995)
  assert 0 < min(counts) and max(counts) <= 4, counts  # compact: sub-batch
  official = tiny.build("eata", cfg)
  compact = tiny.build("eata", dict(cfg, capacity_buckets=(0.25, 0.5)))
  s_off, _, m_off = tiny.walk(official, official.fresh(0), xs)
  s_cmp, _, _ = tiny.walk(compact, compact.fresh(0), xs)
  np.testing.assert_array_equal(m_off["method/backward_samples"], counts)
  np.testing.assert_array_equal(m_off["method/backward_rows"],
                                [8 if c else 0 for c in counts])
  for k in ("scale", "bias"):
    np.testing.assert_allclose(s_off.params["bn"][k], expect["bn"][k],
                               rtol=1e-4, atol=1e-6)
  moved = np.abs(s_off.params["bn"]["scale"] - params["bn"]["scale"]).max()
  off_by = np.abs(s_cmp.params["bn"]["scale"] - expect["bn"]["scale"]).max()
  assert off_by > 0.05 * moved, (off_by, moved)


def test_eata_bucketed_gradient_is_the_gradient_of_its_definition():
  """Above the largest capacity the `value_and_grad` hook's vjp equals
  `jax.grad` of `apply` (the definition); the loss values agree in every
  branch."""
  _, params, _ = tiny.variables()
  x = tiny.stream(1, 8, seed=3)[0]
  ent = tiny.np_entropy(tiny.np_forward(params, x))
  hp_full = dict(EATA_CFG, e_margin_factor=float(np.sort(ent)[6]) / math.log(
      3))
  hp_sub = dict(hp_full, e_margin_factor=float(np.sort(ent)[2]) / math.log(3))
  for cfg, rows in ((hp_full, 8.0), (hp_sub, 2.0)):
    adapter = tiny.build("eata", cfg)
    state = adapter.fresh(0)
    method, setup = adapter.setup.method, adapter.setup
    hp = setup.hparams["method"]
    ctx = method_lib.StepContext(
        model=setup.model, run=setup.run, step=state.step,
        inputs=setup.parts.preprocess({"image": jnp.asarray(x)}, None),
        model_state=state.model_state, trainable=setup.parts.trainable,
        rng_model=state.rng, preprocess=setup.parts.preprocess,
        normalize=setup.parts.normalize)
    apply = lambda p: method.apply(hp, ctx, p, state.method_state, {}, None)
    (loss, aux), grads = method.value_and_grad(
        hp, ctx, state.params, state.method_state, {}, None, None)
    assert float(aux.metrics["backward_rows"]) == rows
    (ref_loss, _), ref_grads = ctx.value_and_grad(apply, state.params)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-6)
    if rows == 8.0:
      _close(grads, ref_grads, rtol=1e-5, atol=1e-7)


def test_eata_sub_batch_backward_matches_version_2_and_saves_rows():
  _, params, _ = tiny.variables()
  x = tiny.stream(1, 8, seed=5)[0]
  # A margin that keeps exactly the 2 most confident samples.
  ent = tiny.np_entropy(tiny.np_forward(params, x))
  margin = np.sort(ent)[2] / math.log(3)
  adapter = tiny.build("eata", dict(EATA_CFG, e_margin_factor=float(margin),
                                    d_margin=2.0))
  new, _, m = tiny.step(adapter, adapter.fresh(0), x)
  assert m["backward_samples"] == 2.0
  assert m["backward_rows"] == 2.0   # capacity 0.25 * 8
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
  xs = tiny.stream(4, 8, seed=1)
  off = dict(EATA_CFG, e_margin_factor=1e6, d_margin=1e6, reweight=0.0,
             fisher_alpha=0.0)
  a_eata = tiny.build("eata", off, "adamw", 1e-2)
  a_tent = tiny.build("tent", {}, "adamw", 1e-2)
  s_eata, p_eata, _ = tiny.walk(a_eata, a_eata.fresh(0), xs)
  s_tent, p_tent, _ = tiny.walk(a_tent, a_tent.fresh(0), xs)
  np.testing.assert_array_equal(p_eata, p_tent)
  _close(s_eata.params, s_tent.params, rtol=1e-5, atol=1e-7)


def test_eata_skips_the_step_when_nothing_is_selected():
  x = tiny.stream(1, 8)[0]
  official = dict(EATA_CFG, e_margin_factor=1e-6)
  del official["capacity_buckets"]
  for cfg, rows in ((official, 8.0 if jax.default_backend() == "cpu"
                     else 0.0), (dict(official, capacity_buckets=(0.5,)),
                                 0.0)):
    adapter = tiny.build("eata", cfg, "adamw", 1e-2)
    state = adapter.fresh(0)
    new, _, m = tiny.step(adapter, state, x)
    assert m["backward_samples"] == 0.0
    # The default back-propagates anyway on XLA:CPU (no conditional, see
    # eata.make_value_and_grad); the sub-batch arm never does.
    assert m["backward_rows"] == rows
    _close((new.params, new.opt_state), (state.params, state.opt_state),
           rtol=0, atol=0)


def test_eata_fisher_is_mean_squared_pseudo_label_gradient():
  _, params, _ = tiny.variables()
  clean = tiny.stream(3, 8, seed=7)
  adapter = tiny.build("eata", dict(EATA_CFG, fisher_alpha=2.0), clean=clean)
  fisher = adapter.state0.method_state["fisher"]
  expect = {"scale": 0.0, "bias": 0.0}
  for x in clean:
    def ce(p, x=x):
      z = tiny.np_forward(p, x)
      logp = np.log(tiny.np_softmax(z))
      return -logp[np.arange(len(z)), z.argmax(-1)].mean()
    g = tiny.np_bn_grad(ce, params)
    expect = {k: expect[k] + g[k] ** 2 / 3 for k in expect}
  for k in ("scale", "bias"):
    np.testing.assert_allclose(fisher["bn"][k], expect[k], rtol=1e-3,
                               atol=1e-8)
  # Penalty 2 * alpha * F * (theta - theta_0) once params moved.
  moved = jax.tree.map(lambda p: p + 0.1, params)
  pen = eata.fisher_penalty(moved, adapter.state0.method_state,
                            method_lib.trainable_mask(params, "norm"))
  np.testing.assert_allclose(
      pen, sum(float(np.sum(expect[k] * 0.01)) for k in expect), rtol=1e-3)


def test_cotta_gate_off_restore_off_is_plain_ema_teacher():
  xs = tiny.stream(4, 8, seed=2)
  adapter = tiny.build("cotta", COTTA_CFG)
  # Student == teacher gives a zero gradient, so one gated step first moves
  # the student away (the gate is a traced number: no recompilation).
  state, _, m = tiny.step(adapter, adapter.fresh(0), xs[0],
                          tiny.with_hparams(adapter, gate=1.1))
  assert m["gate_fired"] == 1.0
  student = jax.tree.map(np.asarray, state.params)
  teacher = jax.tree.map(np.asarray, state.method_state["teacher"])
  for x in xs[1:]:
    new, logits, m = tiny.step(adapter, state, x)
    assert m["gate_fired"] == 0.0
    # Reported: the teacher's plain prediction before the update.
    target = tiny.np_forward(teacher, x)
    np.testing.assert_allclose(logits, target, rtol=1e-4, atol=1e-5)
    # Student: one SGD step on CE(softmax(teacher), student); all params.
    t = tiny.np_softmax(target)
    loss = lambda p, x=x, t=t: -(t * np.log(tiny.np_softmax(
        tiny.np_forward(p, x)))).sum(-1).mean()
    grad = tiny.np_bn_grad(loss, student)
    np.testing.assert_allclose(new.params["bn"]["scale"],
                               student["bn"]["scale"] - 0.5 * grad["scale"],
                               rtol=1e-3, atol=1e-6)
    assert not np.allclose(new.params["head"]["kernel"],
                           student["head"]["kernel"])  # CoTTA trains all
    student = jax.tree.map(np.asarray, new.params)
    teacher = jax.tree.map(lambda a, b: 0.9 * a + 0.1 * b, teacher, student)
    _close(new.method_state["teacher"], teacher, rtol=1e-5, atol=1e-7)
    state = new


def test_cotta_gate_fires_and_averages_augmented_teacher_logits():
  _, params, _ = tiny.variables()
  x = tiny.stream(1, 8, seed=4)[0]
  adapter = tiny.build("cotta", dict(COTTA_CFG, gate=1.1))
  state = adapter.fresh(0)
  _, logits, m = tiny.step(adapter, state, x)
  assert m["gate_fired"] == 1.0
  # The same keys as the step: fold_in(rng, step), the method's third of
  # three, the teacher's half of that.
  rng_method = jax.random.split(jax.random.fold_in(state.rng, 0), 3)[2]
  keys = jax.random.split(jax.random.split(rng_method)[0], 2)
  augment = jax.jit(cotta_augment.augment)
  aug = [np.asarray(augment(k, x.astype(np.float32) / 255.0)) for k in keys]
  # The oracle takes float images: its forward normalises x / 255.
  expect = np.mean([tiny.np_forward(params, a * 255.0) for a in aug], 0)
  np.testing.assert_allclose(logits, expect, rtol=1e-4, atol=1e-4)


def test_cotta_recomputes_the_gate_from_clean_source_images():
  """gate < 0: the 5% quantile of the source model's confidence on the
  clean batches (test-batch BatchNorm per batch) minus 0.05."""
  _, params, _ = tiny.variables()
  clean = tiny.stream(3, 8, seed=9)
  adapter = tiny.build("cotta", dict(COTTA_CFG, gate=-1.0), clean=clean)
  conf = np.concatenate([tiny.np_softmax(tiny.np_forward(params, x)).max(-1)
                         for x in clean])
  np.testing.assert_allclose(adapter.state0.method_state["gate"],
                             np.quantile(conf, 0.05) - 0.05, rtol=1e-5)
  _, _, m = tiny.step(adapter, adapter.fresh(0), tiny.stream(1, 8)[0])
  np.testing.assert_allclose(m["gate"], np.quantile(conf, 0.05) - 0.05,
                             rtol=1e-5)


def test_cotta_stochastic_restore_extremes():
  _, params, _ = tiny.variables()
  moved = jax.tree.map(lambda p: p + 1.0, params)
  key = jax.random.PRNGKey(0)
  for prob, expect in ((0.0, moved), (1.0, params)):
    _close(cotta.stochastic_restore(moved, params, prob, key), expect,
           rtol=0, atol=0)
  half = cotta.stochastic_restore(
      {"w": jnp.ones((100, 100))}, {"w": jnp.zeros((100, 100))}, 0.3, key)
  assert abs(float(jnp.mean(half["w"] == 0)) - 0.3) < 0.02


def test_cotta_augment_flip_switch():
  """`hflip=False` draws the same augmentation minus the mirror: with the
  noise off, each flipped output is the mirror of the unflipped one."""
  x = jax.random.uniform(jax.random.PRNGKey(0), (2, 8, 8, 3))
  flipped = 0
  fn = jax.jit(cotta_augment.augment, static_argnums=(2, 3))
  for k in range(8):
    key = jax.random.PRNGKey(k)
    on, off = np.asarray(fn(key, x, 0.0, True)), np.asarray(
        fn(key, x, 0.0, False))
    if np.allclose(on, off[:, :, ::-1], atol=1e-6) and not np.allclose(
        on, off, atol=1e-6):
      flipped += 1
    else:
      np.testing.assert_allclose(on, off, atol=1e-6)
  assert 0 < flipped < 8


def test_ostta_selection_by_hand_and_select_off_is_tent():
  _, params, _ = tiny.variables()
  xs = tiny.stream(2, 8, seed=6)
  adapter = tiny.build("ostta", {})
  state, _, _ = tiny.step(adapter, adapter.fresh(0), xs[0])
  p1 = jax.tree.map(np.asarray, state.params)  # adapted != original now
  z_o = tiny.np_forward(params, xs[1])
  z_a = tiny.np_forward(p1, xs[1])
  keep = np.asarray(ostta_woc.confidence_kept(z_o, z_a))
  np.testing.assert_array_equal(
      keep, tiny.np_softmax(z_a)[np.arange(8), z_o.argmax(-1)]
      >= tiny.np_softmax(z_o).max(-1))
  assert 0 < keep.sum() < 8
  new, _, m = tiny.step(adapter, state, xs[1])
  assert m["selected"] == keep.sum()
  loss = lambda p: (keep * tiny.np_entropy(tiny.np_forward(p, xs[1]))).sum(
  ) / keep.sum()
  grad = tiny.np_bn_grad(loss, p1)
  np.testing.assert_allclose(new.params["bn"]["bias"],
                             p1["bn"]["bias"] - 0.5 * grad["bias"],
                             rtol=1e-3, atol=1e-6)
  # select=0 is plain Tent.
  a_o, a_t = tiny.build("ostta", {"select": 0.0}), tiny.build("tent", {})
  s_o, _, _ = tiny.walk(a_o, a_o.fresh(0), xs)
  s_t, _, _ = tiny.walk(a_t, a_t.fresh(0), xs)
  _close(s_o.params, s_t.params, rtol=1e-6, atol=1e-7)

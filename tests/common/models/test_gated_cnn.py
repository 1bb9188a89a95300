"""`gated_cnn`: per-input FLOPs accounting, static L1 pruning, gate modes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from common.models import gated_cnn


def _apply(gating, keep=1.0):
  model = gated_cnn.GatedCNN(num_classes=3, widths=(4, 6, 8),
                             pool_after=(0,), gating=gating, keep=keep)
  x = jax.random.normal(jax.random.key(0), (5, 8, 8, 2))
  variables = model.init(jax.random.key(1), x, train=False)
  out = jax.jit(lambda v: model.apply(v, x, train=False))(variables)
  return variables["params"], out


def test_flops_count_active_channels_per_input():
  _, out = _apply("dynamic")
  a = [np.asarray(g).sum(-1) for g in out["gates"]]
  areas = (64, 16, 16)
  want = areas[0] * 9 * 2 * a[0] + areas[1] * 9 * a[0] * a[1] + (
      areas[2] * 9 * a[1] * a[2]) + 8 * 3
  np.testing.assert_allclose(out["flops"], want, rtol=1e-6)
  dense = 64 * 9 * 2 * 4 + 16 * 9 * 4 * 6 + 16 * 9 * 6 * 8 + 24
  np.testing.assert_allclose(out["flops_ratio"], want / dense, rtol=1e-6)
  for g, z in zip(out["gates"], out["gate_logits"]):   # gate = 1[logit > 0]
    np.testing.assert_array_equal(g, np.asarray(z) > 0)


def test_static_l1_keeps_the_largest_filters_for_every_input():
  params, out = _apply("static_l1", keep=0.5)
  for i, g in enumerate(out["gates"]):
    norms = np.abs(np.asarray(params[f"conv{i}"]["kernel"])).sum((0, 1, 2))
    k = round(0.5 * len(norms))
    want = np.zeros(len(norms))
    want[np.argsort(-norms)[:k]] = 1
    np.testing.assert_array_equal(np.asarray(g), np.tile(want, (5, 1)))
  _, dense = _apply("none")
  assert np.all(np.asarray(dense["flops_ratio"]) == 1.0)
  assert np.all(np.asarray(out["flops_ratio"]) < 0.5)


def test_gated_resnet_gates_every_conv_and_counts_flops():
  model = gated_cnn.GatedResNet(num_classes=3, depth=8)
  x = jax.random.normal(jax.random.key(0), (2, 8, 8, 3))
  variables = model.init(jax.random.key(1), x, train=False)
  out = jax.jit(lambda v: model.apply(v, x, train=False))(variables)
  assert len(out["gates"]) == 7 and out["logits"].shape == (2, 3)
  a = [np.asarray(g).sum(-1) for g in out["gates"]]
  areas = (64, 64, 64, 16, 16, 4, 4)
  prev, want = 3.0, 64.0 * 3  # + the head (64 -> 3)
  for area, act in zip(areas, a):
    want = want + area * 9 * prev * act
    prev = act
  np.testing.assert_allclose(out["flops"], want, rtol=1e-6)

"""`gated_cnn` / `gated_resnet`: per-input FLOPs accounting, static L1
pruning, gate modes. One jitted call builds every model variant."""

from __future__ import annotations

import functools

import jax
import numpy as np

from common.models import gated_cnn

_X = jax.random.normal(jax.random.key(0), (5, 8, 8, 2))


@functools.cache
def _outputs():
  """`{name: (params, outputs)}` of the four models, one compilation."""
  models = {
      g: gated_cnn.GatedCNN(num_classes=3, widths=(4, 6, 8), pool_after=(0,),
                            gating=g, keep=0.5)
      for g in ("dynamic", "static_l1", "none")}
  models["resnet"] = gated_cnn.GatedResNet(num_classes=3, depth=8)

  def run(x):
    res = {}
    for name, m in models.items():
      out, variables = m.init_with_output(jax.random.key(1), x, train=False)
      res[name] = (variables["params"], out)
    return res
  return jax.jit(run)(_X)


def test_flops_count_active_channels_per_input():
  _, out = _outputs()["dynamic"]
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
  params, out = _outputs()["static_l1"]
  for i, g in enumerate(out["gates"]):
    norms = np.abs(np.asarray(params[f"conv{i}"]["kernel"])).sum((0, 1, 2))
    k = round(0.5 * len(norms))
    want = np.zeros(len(norms))
    want[np.argsort(-norms)[:k]] = 1
    np.testing.assert_array_equal(np.asarray(g), np.tile(want, (5, 1)))
  _, dense = _outputs()["none"]
  assert np.all(np.asarray(dense["flops_ratio"]) == 1.0)
  assert np.all(np.asarray(out["flops_ratio"]) < 0.5)


def test_gated_resnet_gates_every_conv_and_counts_flops():
  _, out = _outputs()["resnet"]
  assert len(out["gates"]) == 7 and out["logits"].shape == (5, 3)
  a = [np.asarray(g).sum(-1) for g in out["gates"]]
  areas = (64, 64, 64, 16, 16, 4, 4)   # stem, then 3 stages of 1 block
  prev, want = 2.0, 64.0 * 3            # input channels; the head 64 -> 3
  for area, act in zip(areas, a):
    want = want + area * 9 * prev * act
    prev = act
  np.testing.assert_allclose(out["flops"], want, rtol=1e-6)

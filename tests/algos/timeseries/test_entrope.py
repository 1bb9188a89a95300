"""EntroPE: tokenizer vs torch.bucketize, boundaries from known entropies,
RevIN inverse, padding invariance of variable patches, the two stages'
trainable masks, boundary precision/recall."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from algos.timeseries import entrope
from algos.timeseries import entrope_model
from algos.timeseries import entrope_patching as ep


def test_quantize_matches_official_bucketing():
  x = jax.random.normal(jax.random.PRNGKey(0), (3, 40)) * 2.0
  vocab, low, high = 64, -2.5, 2.5
  # The official MeanScaleUniformBins steps, with torch.bucketize.
  t = torch.tensor(np.asarray(x))
  scale = t.abs().mean(-1, keepdim=True)
  centers = torch.linspace(low, high, vocab - 5)
  edges = torch.cat([torch.tensor([-1e20]), (centers[1:] + centers[:-1]) / 2,
                     torch.tensor([1e20])])
  want = (torch.bucketize(t / scale, edges, right=True) + 4).clamp(0,
                                                                  vocab - 1)
  got = ep.quantize(x, vocab, low, high)
  np.testing.assert_array_equal(np.asarray(got), want.numpy())
  assert got.min() >= 5 and got.max() <= vocab - 1


def test_global_rule_boundaries_from_known_entropy():
  # Entropy peaks at t = 3 and 7: patches start one step later.
  h = jnp.array([[0.1, 0.2, 0.1, 3.0, 0.2, 0.1, 0.3, 2.5, 0.1, 0.2]])
  starts = ep.entropy_starts(h, 0.8, "global", max_patch_length=100)
  np.testing.assert_array_equal(np.flatnonzero(starts[0]), [0, 4, 8])


def test_relative_rule_and_splitting_long_patches():
  # Rises of entropy at t = 4 (+2.0) and t = 8 (+1.5); position 0 fires
  # as in the official monotonicity mask, starting a patch at 1.
  h = jnp.array([[1.0, 1.0, 1.0, 1.0, 3.0, 3.0, 3.0, 3.0, 4.5, 4.5, 4.5,
                  4.5]])
  starts = ep.entropy_starts(h, 0.8, "relative", max_patch_length=100)
  np.testing.assert_array_equal(np.flatnonzero(starts[0]), [0, 1, 5, 9])
  # max_patch_length 3 cuts the patches [1, 5) and [5, 9) after 3 steps.
  split = ep.entropy_starts(h, 0.8, "relative", max_patch_length=3)
  np.testing.assert_array_equal(np.flatnonzero(split[0]), [0, 1, 4, 5, 8, 9])


def test_patch_membership_pads_and_counts_overflow():
  starts = ep.static_starts(2, 10, 3)            # patches 0,3,6,9
  pid, member, overflow = ep.patch_membership(starts, 6)
  np.testing.assert_array_equal(member.any(-1)[0], [1, 1, 1, 1, 0, 0])
  assert int(overflow.max()) == 0
  pid, _, overflow = ep.patch_membership(starts, 3)
  assert int(overflow[0]) == 1 and int(pid[0, -1]) == 2


def test_boundary_counts_within_tolerance():
  starts = jnp.zeros(20, bool).at[jnp.array([0, 5, 12])].set(True)
  switch = jnp.zeros(20, bool).at[jnp.array([7, 18])].set(True)
  got = {k: int(v) for k, v in ep.boundary_counts(starts, switch, 2).items()}
  assert got == {"predicted": 2, "switches": 2, "hits": 1, "found": 1}


def test_revin_is_invertible():
  x = jax.random.normal(jax.random.PRNGKey(1), (4, 24, 3)) * 5 + 2
  rev = entrope_model.RevIN()
  stats = entrope_model.revin_stats(x)
  params = {"params": {"weight": jnp.array([0.5, 2.0, 1.5]),
                       "bias": jnp.array([0.1, -0.3, 0.0])}}
  z = rev.apply(params, x, stats)
  np.testing.assert_allclose(z.mean(1), jnp.broadcast_to(
      params["params"]["bias"], (4, 3)), atol=1e-5)
  back = rev.apply(params, z, stats, inverse=True)
  np.testing.assert_allclose(back, x, rtol=1e-5, atol=1e-4)


@pytest.fixture(scope="module")
def tiny():
  x = jax.random.normal(jax.random.PRNGKey(2), (2, 32, 2)).cumsum(1)
  kw = dict(horizon=8, vocab_size=32, d_model=8, heads=2, global_layers=1,
            d_ff=16, max_patch_length=8, entropy_dim=8, entropy_heads=2,
            entropy_layers=1, decoder_window=3)
  model = entrope_model.EntroPE(max_patches=12, **kw)
  # Jitted: one compilation instead of op-by-op dispatch of the init.
  params = jax.jit(model.init)({"params": jax.random.PRNGKey(3)}, x)
  return x, kw, params


def test_padding_patch_slots_do_not_change_the_forecast(tiny):
  x, kw, params = tiny
  outs = [jax.jit(entrope_model.EntroPE(max_patches=p, **kw).apply)(
      params, x, quantile=0.8) for p in (12, 32)]
  assert int(outs[0]["overflow"].max()) == 0
  np.testing.assert_array_equal(outs[0]["starts"], outs[1]["starts"])
  np.testing.assert_allclose(outs[0]["forecast"], outs[1]["forecast"],
                             rtol=1e-5, atol=1e-5)
  assert outs[0]["forecast"].shape == (2, 8, 2)


def test_stages_train_disjoint_parameters(tiny):
  _, _, params = tiny
  masks = [entrope.make({"stage": s}).trainable(params["params"])
           for s in entrope.STAGES]
  for part, leaves in masks[0].items():
    flags = jax.tree.leaves(leaves) + jax.tree.leaves(masks[1][part])
    assert sum(flags) == len(flags) // 2, part   # exactly one stage each
  assert all(jax.tree.leaves(masks[0]["entropy_model"]))

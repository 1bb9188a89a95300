"""The MoE routers: top-k capacity truncation and sparse-OT routing."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from algos.ot import sparse_ot_moe as moe


def test_topk_keeps_the_first_tokens_up_to_capacity():
  # Every token prefers expert 0; expert 0 takes the first 2 in batch order.
  logits = jnp.tile(jnp.array([[3.0, 0.0, 0.0]]), (5, 1))
  weights, routed, wanted = moe.route(logits, "topk", capacity=2, gamma=1.0)
  np.testing.assert_array_equal(routed[:, 0], [1, 1, 0, 0, 0])
  np.testing.assert_array_equal(routed[:, 1:], 0)
  np.testing.assert_array_equal(wanted.sum(0), [5, 0, 0])
  probs = jax.nn.softmax(logits[0])
  np.testing.assert_allclose(weights[:2, 0], probs[0], rtol=1e-6)
  np.testing.assert_array_equal(weights[2:], 0)
  assert moe.capacity_of(32, 4, 1.0) == 8
  assert moe.capacity_of(3, 8, 1.0) == 1   # never 0


def test_sparse_ot_respects_capacity_and_weights_sum_to_one():
  logits = jax.random.normal(jax.random.PRNGKey(0), (16, 4)) * 3.0
  weights, routed, wanted = jax.jit(
      lambda z: moe.route(z, "sparse_ot", capacity=4, gamma=1.0))(logits)
  assert int(routed.sum(0).max()) <= 4          # <= capacity per expert
  np.testing.assert_array_equal(routed, wanted)
  np.testing.assert_array_equal(routed, (weights > 0).astype(np.float32))
  # n * plan: column sums exact (semi-dual), row sums ~1.
  np.testing.assert_allclose(weights.sum(0), 4.0, rtol=1e-4)
  np.testing.assert_allclose(weights.sum(1), 1.0, atol=0.2)

"""Co-teaching: small-loss cross-selection between two networks.

Co-teaching: Robust Training of Deep Neural Networks with Extremely Noisy
Labels. Han et al., NeurIPS 2018. arXiv:1804.06872. As run by "Compressing
Features for Learning with Noisy Labels" (arXiv:2206.13140), official code
https://github.com/yingyichen-cyy/Nested-Co-teaching
(co_teaching_resnet/{main.py, train.py, loss.py}):

* the batch is split in halves; network 1 sees the first, network 2 the
  second (`groupClsData`);
* each network ranks ITS half by per-example cross-entropy in eval mode
  (`SampleSelection`, under `torch.no_grad()`) and keeps the
  `int((1 - forget_rate) * half)` smallest;
* network 1 trains on the examples network 2 kept, and vice versa
  (`Classification`: mean CE over the kept examples);
* the forget rate of epoch e (0-based) is `linspace(0, forget_rate,
  num_gradual)[e]` for e < num_gradual, then `forget_rate` (`rateSchedule`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def forget_rate_at(epoch: jax.Array, forget_rate: jax.Array,
                   num_gradual: jax.Array) -> jax.Array:
  """The official `rateSchedule[epoch]` (0-based epoch, traced numbers)."""
  epoch = jnp.asarray(epoch, jnp.float32)
  ramp = forget_rate * epoch / jnp.maximum(num_gradual - 1.0, 1.0)
  return jnp.where(epoch < num_gradual, ramp, forget_rate)


def num_remembered(n: jax.Array, forget_rate: jax.Array) -> jax.Array:
  """int32 `int((1 - forget_rate) * n)`, as the official `nbRemember`."""
  return jnp.floor((1.0 - forget_rate) * n + 1e-6).astype(jnp.int32)


def small_loss_mask(losses: jax.Array, forget_rate: jax.Array,
                    valid: jax.Array | None = None) -> jax.Array:
  """`[b]` bool: the `int((1 - rate) * n)` smallest of `losses [b]`.

  `valid` (bool `[b]`) excludes padded rows from the ranking and from n.
  Ties rank by position (a stable sort), as a mask instead of an index list
  so the number kept can be traced.
  """
  if valid is None:
    valid = jnp.ones(losses.shape, bool)
  keyed = jnp.where(valid, losses.astype(jnp.float32), jnp.inf)
  rank = jnp.argsort(jnp.argsort(keyed, stable=True), stable=True)
  keep = num_remembered(jnp.sum(valid).astype(jnp.float32), forget_rate)
  return (rank < keep) & valid


def per_example_ce(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """`[b]` cross-entropy of `logits [b, C]` against int `labels [b]`."""
  logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  return -jnp.take_along_axis(logp, labels[:, None], axis=-1)[:, 0]


def cross_selection(logits1: jax.Array, labels1: jax.Array,
                    logits2: jax.Array, labels2: jax.Array,
                    forget_rate: jax.Array
                    ) -> tuple[jax.Array, jax.Array]:
  """`(keep1 [b1], keep2 [b2])`: each network's small-loss examples of its
  own half; network 1 then trains on half 2 where `keep2`, and vice versa.
  """
  logits1, logits2 = jax.lax.stop_gradient((logits1, logits2))
  keep1 = small_loss_mask(per_example_ce(logits1, labels1), forget_rate)
  keep2 = small_loss_mask(per_example_ce(logits2, labels2), forget_rate)
  return keep1, keep2

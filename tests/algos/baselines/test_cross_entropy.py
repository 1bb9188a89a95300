"""Cross-entropy baseline: optax parity, smoothing, masking."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from algos.baselines import cross_entropy


def test_matches_optax_and_smoothing(rng):
  logits = jax.random.normal(rng, (8, 10))
  labels = jnp.arange(8) % 10
  batch = {"label": labels, "mask": jnp.ones(8, bool)}
  for eps in (0.0, 0.1):
    value, _, _ = cross_entropy.loss({"label_smoothing": jnp.float32(eps)},
                                     {}, {"logits": logits}, batch, {}, rng)
    ref = optax.softmax_cross_entropy(
        logits, optax.smooth_labels(jax.nn.one_hot(labels, 10), eps)).mean()
    np.testing.assert_allclose(value, ref, rtol=1e-6)


def test_mask_excludes_rows(rng):
  logits = jax.random.normal(rng, (4, 3))
  labels = jnp.array([0, 1, 2, 0])
  mask = jnp.array([True, True, False, False])
  value, _, _ = cross_entropy.loss({"label_smoothing": jnp.float32(0.0)}, {},
                                   {"logits": logits},
                                   {"label": labels, "mask": mask}, {}, rng)
  ref = optax.softmax_cross_entropy_with_integer_labels(
      logits[:2], labels[:2]).mean()
  np.testing.assert_allclose(value, ref, rtol=1e-6)

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


def test_per_pixel_labels_drop_ignored_pixels_and_padded_rows(rng):
  logits = jax.random.normal(rng, (3, 4, 4, 5))
  labels = jax.random.randint(jax.random.fold_in(rng, 1), (3, 4, 4), 0, 5)
  labels = labels.at[0, 0, :].set(255)  # ignored boundary pixels
  mask = jnp.array([True, True, False])  # row 2 is padding
  value, _, _ = jax.jit(cross_entropy.loss)(
      {"label_smoothing": jnp.float32(0.0)}, {}, {"logits": logits},
      {"label": labels, "mask": mask}, {}, rng)
  keep = np.asarray((labels != 255) & mask[:, None, None])
  ref = optax.softmax_cross_entropy_with_integer_labels(
      logits[keep], labels[keep]).mean()
  np.testing.assert_allclose(value, ref, rtol=1e-6)

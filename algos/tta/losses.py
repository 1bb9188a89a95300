"""Loss pieces shared by the test-time adaptation methods of `algos/tta`.

Entropies are of `softmax(logits)` computed from `log_softmax`, as the
official `softmax_entropy` functions of Tent, EATA, CoTTA and the open-set
re-implementation do (`-(x.softmax(1) * x.log_softmax(1)).sum(1)`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def softmax_entropy(logits: jax.Array) -> jax.Array:
  """Per-sample entropy `[b]` of `softmax(logits [b, C])`, in nats."""
  logp = jax.nn.log_softmax(logits, axis=-1)
  return -jnp.sum(jnp.exp(logp) * logp, axis=-1)


def soft_cross_entropy(logits: jax.Array, target_logits: jax.Array
                       ) -> jax.Array:
  """`-sum_c softmax(target)_c log_softmax(logits)_c`, per sample `[b]`.

  CoTTA's student loss (`softmax_entropy(x, x_ema)` in `cifar/cotta.py`);
  the target is not differentiated.
  """
  target = jax.nn.softmax(jax.lax.stop_gradient(target_logits), axis=-1)
  return -jnp.sum(target * jax.nn.log_softmax(logits, axis=-1), axis=-1)


def mean_prediction_entropy(logits: jax.Array) -> jax.Array:
  """Entropy of the batch-mean prediction `H(mean_i softmax(logits_i))`."""
  p = jnp.mean(jax.nn.softmax(logits, axis=-1), axis=0)
  return -jnp.sum(p * jnp.log(jnp.maximum(p, 1e-30)))


def weighted_mean(values: jax.Array, weights: jax.Array) -> jax.Array:
  """`sum(w * v) / max(#{w > 0}, 1)`: a mean over the selected samples.

  EATA and the open-set selection average the (weighted) losses over the
  *selected* samples only (`entropys[ids].mean(0)`); with none selected the
  loss is 0, not NaN.
  """
  count = jnp.sum((weights > 0).astype(values.dtype))
  return jnp.sum(values * weights) / jnp.maximum(count, 1.0)

"""Nested dropout on the penultimate features, and the truncation K.

Compressing Features for Learning with Noisy Labels. Chen, Hu, Shen, Ai,
Suykens. IEEE TNNLS 2022. arXiv:2206.13140 (workshop version "Boosting
Co-teaching with Compression Regularization for Label Noise",
arXiv:2104.13766). Official code (PyTorch):
https://github.com/yingyichen-cyy/Nested-Co-teaching (nested/train_resnet.py:
`GaussianDist`, `Train`, `TestNested`).

Nested dropout (Rippel et al. 2014) keeps only the first k units of the
feature vector `f [d]` that feeds the classifier, `f * [1..1 0..0]`, with k
drawn at random; units early in the order are then trained with every
truncation and carry the most information, which the paper argues
compresses the representation and resists fitting noisy labels. As the
official code samples it:

* the distribution over the number of kept units k = 1..d is
  `p(k) ~ exp(-((k - mu) / std)^2)` (their "GaussianDist"; mu 0, std the
  `--nested` flag: 10 for CIFAR-10, 100 for CIFAR-100 and Clothing1M);
* ONE k per training batch (`np.random.choice` once per step), shared by
  every example (and by both networks in co-teaching);
* at evaluation every k is tried on the validation set and the most accurate
  one kept, ties to the smaller k (`acc - 1e-5 * index`); the test error is
  reported at that k.

The dropout baseline of the paper is ordinary (inverted) dropout on the same
features (`F.dropout(feature, p)`), identity at evaluation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

# The official tie-break between truncations of equal validation accuracy.
TIE_BREAK = 1e-5


def truncation_log_probs(dim: int, mu: jax.Array, std: jax.Array
                         ) -> jax.Array:
  """`[d]` unnormalised log p(k) for k = 1..d kept units (index k - 1)."""
  k = jnp.arange(1, dim + 1, dtype=jnp.float32)
  return -jnp.square((k - mu) / std)


def truncation_probs(dim: int, mu: jax.Array, std: jax.Array) -> jax.Array:
  """`[d]` p(k) for k = 1..d, the official `GaussianDist(mu, std, d)`."""
  return jax.nn.softmax(truncation_log_probs(dim, mu, std))


def sample_num_kept(rng: jax.Array, dim: int, mu: jax.Array,
                    std: jax.Array) -> jax.Array:
  """int32 scalar k in [1, d]: units kept in this step (one per batch)."""
  return jax.random.categorical(
      rng, truncation_log_probs(dim, mu, std)).astype(jnp.int32) + 1


def prefix_mask(num_kept: jax.Array, dim: int) -> jax.Array:
  """`[d]` float32: 1 on the first `num_kept` units, 0 after."""
  return (jnp.arange(dim) < num_kept).astype(jnp.float32)


def nested_features(rng: jax.Array, features: jax.Array, mu: jax.Array,
                    std: jax.Array) -> jax.Array:
  """`features [..., d]` with one random truncation for the whole batch."""
  dim = features.shape[-1]
  mask = prefix_mask(sample_num_kept(rng, dim, mu, std), dim)
  return features * mask.astype(features.dtype)


def dropout_features(rng: jax.Array, features: jax.Array, rate: jax.Array
                     ) -> jax.Array:
  """Inverted dropout of `features [..., d]` at a traced `rate` in [0, 1)."""
  keep = 1.0 - rate
  kept = jax.random.bernoulli(rng, keep, features.shape)
  return jnp.where(kept, features / keep, 0.0).astype(features.dtype)


def correct_per_truncation(features: np.ndarray, kernels: np.ndarray,
                           biases: np.ndarray, labels: np.ndarray,
                           mask: np.ndarray, rows: int = 256) -> np.ndarray:
  """Correct predictions at every truncation k = 1..d (host, float64).

  Args:
    features: `[n, m, d]` penultimate features of m networks (1 or 2).
    kernels: `[m, d, C]` their final Dense kernels.
    biases: `[m, C]` their biases.
    labels: `[n]` int labels.
    mask: `[n]` bool, false on padding rows.
    rows: examples per chunk (bounds the `[rows, d, C]` partial sums).

  Returns:
    `[d]` counts; entry k - 1 is the number of examples whose mean over the
    networks of `head(f * prefix_mask(k))` ranks the label first.
  """
  features = np.asarray(features, np.float64)[mask]
  labels = np.asarray(labels)[mask]
  dim = features.shape[-1]
  counts = np.zeros(dim, np.int64)
  for start in range(0, len(labels), rows):
    f = features[start:start + rows]                       # [r, m, d]
    # logits after keeping units 1..k: bias + sum_{j<k} f_j W_j.
    parts = f[..., None] * kernels[None].astype(np.float64)  # [r, m, d, C]
    logits = np.cumsum(parts, axis=2) + biases[None, :, None]
    logits = logits.mean(axis=1)                           # [r, d, C]
    y = labels[start:start + rows]
    counts += np.sum(logits.argmax(-1) == y[:, None], axis=0)
  return counts


def choose_num_kept(correct: np.ndarray, total: int) -> tuple[int, float]:
  """`(k, accuracy)`: the official choice, max of `acc - 1e-5 * (k - 1)`."""
  acc = np.asarray(correct, np.float64) / max(total, 1)
  index = int(np.argmax(acc - TIE_BREAK * np.arange(len(acc))))
  return index + 1, float(acc[index])

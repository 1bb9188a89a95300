"""Per-example classification losses compared in the LDR paper.

The baselines of Zhu, Ying, Yang, "Label Distributionally Robust Losses for
Multi-class Classification: Consistency, Robustness and Adaptivity", ICML
2023, arXiv:2112.14869, written as they are computed in the official
`loss.py` of https://github.com/Optimization-AI/ICML2023_LDR (checked to
1e-6 in `tests/algos/noisy_labels/test_ldr_official_parity.py`), plus focal
loss. Every function maps `logits [b, K]` (float32) and `labels [b]` (int)
to `[b]` per-example values; its numbers may be traced scalars.

Sources of the losses: CE; Crammer-Singer (CS) and Weston-Watkins (WW)
multi-class hinge losses; GCE (Zhang & Sabuncu 2018, arXiv:1805.07836);
SCE (Wang et al. 2019, arXiv:1908.06112; `A` is their clipped log 0);
MAE and MSE of softmax probabilities (Ghosh et al. 2017); NCE + RCE,
NCE + AGCE, NCE + AUL (Ma et al. 2020, arXiv:2006.13554; Zhou et al. 2021,
arXiv:2106.05545); JS (Englesson & Azizpour 2021, arXiv:2105.04522); focal
(Lin et al. 2017, arXiv:1708.02002).

Deliberate difference: the official `MAELoss` sums `onehot - softmax` over
the classes without an absolute value, which is identically 0 (it trains
nothing); `mae` here is the MAE of Ghosh et al., `sum |onehot - p| =
2 (1 - p_y)`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# The official RCE clamps probabilities to [1e-7, 1] and log 0 to log 1e-4.
RCE_PROB_MIN = 1e-7
RCE_LOG_ZERO = jnp.log(1e-4)
# The official JS loss clamps the mixture to [1e-7, 1] before its log.
JS_MIX_MIN = 1e-7


def label_logit(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """`[b]` logits of the labelled classes."""
  return jnp.take_along_axis(logits, labels[:, None], axis=-1)[:, 0]


def margins(logits: jax.Array, labels: jax.Array,
            margin: jax.Array | float = 0.0) -> jax.Array:
  """`[b, K]` values `margin * [k != y] + z_k - z_y` (0 at the label)."""
  onehot = jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype)
  return margin * (1.0 - onehot) + logits - label_logit(logits, labels)[:,
                                                                        None]


def label_prob(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """`[b]` softmax probabilities of the labelled classes."""
  return jnp.exp(-ce(logits, labels))


def ce(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Cross-entropy `logsumexp(z) - z_y`."""
  return jax.nn.logsumexp(logits, axis=-1) - label_logit(logits, labels)


def focal(logits, labels, gamma):
  """Focal loss `-(1 - p_y)^gamma log p_y` (gamma 0: CE)."""
  nll = ce(logits, labels)
  return (1.0 - jnp.exp(-nll)) ** gamma * nll


def cs(logits, labels, margin):
  """Crammer-Singer hinge `max(0, max_{k != y} margin + z_k - z_y)`."""
  return jnp.max(margins(logits, labels, margin), axis=-1)


def ww(logits, labels, margin):
  """Weston-Watkins hinge `(1/K) sum_k max(0, margin [k != y] + z_k - z_y)`
  (the official code averages over all K entries)."""
  return jnp.mean(jax.nn.relu(margins(logits, labels, margin)), axis=-1)


def gce(logits, labels, q):
  """Generalized cross-entropy `(1 - p_y^q) / q` (q -> 0: CE; q = 1: MAE/2)."""
  return (1.0 - label_prob(logits, labels) ** q) / q


def sce(logits, labels, balance, a):
  """Symmetric CE as the official code weighs it:
  `(1 - balance) CE + balance * A (1 - p_y)`."""
  return ((1.0 - balance) * ce(logits, labels)
          + balance * a * (1.0 - label_prob(logits, labels)))


def mae(logits, labels):
  """`sum_k |onehot_k - p_k| = 2 (1 - p_y)`: symmetric and bounded."""
  return 2.0 * (1.0 - label_prob(logits, labels))


def mse(logits, labels):
  """`sum_k (onehot_k - p_k)^2` of the softmax probabilities."""
  onehot = jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype)
  return jnp.sum((onehot - jax.nn.softmax(logits, axis=-1)) ** 2, axis=-1)


def nce(logits, labels):
  """Normalised CE `log p_y / sum_k log p_k`, in [0, 1]."""
  logp = jax.nn.log_softmax(logits, axis=-1)
  return label_logit(logp, labels) / jnp.sum(logp, axis=-1)


def rce(logits, labels):
  """Reverse CE `-sum_k p_k log onehot_k` with log 0 = log 1e-4 and
  probabilities clamped at 1e-7, as the official code computes it."""
  p = jnp.maximum(jax.nn.softmax(logits, axis=-1), RCE_PROB_MIN)
  onehot = jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype)
  return -RCE_LOG_ZERO * jnp.sum(p * (1.0 - onehot), axis=-1)


def agce(logits, labels, a, q):
  """Asymmetric GCE `((a + 1)^q - (a + p_y)^q) / q`."""
  return ((a + 1.0) ** q - (a + label_prob(logits, labels)) ** q) / q


def aul(logits, labels, a, q):
  """Asymmetric unhinged loss `((a - p_y)^q - (a - 1)^q) / q`."""
  return ((a - label_prob(logits, labels)) ** q - (a - 1.0) ** q) / q


def nce_rce(logits, labels, alpha, beta):
  return alpha * nce(logits, labels) + beta * rce(logits, labels)


def nce_agce(logits, labels, alpha, beta, a, q):
  return alpha * nce(logits, labels) + beta * agce(logits, labels, a, q)


def nce_aul(logits, labels, alpha, beta, a, q):
  return alpha * nce(logits, labels) + beta * aul(logits, labels, a, q)


def js(logits, labels, pi1):
  """Jensen-Shannon loss between the label (weight `pi1`) and the softmax
  (weight `1 - pi1`), scaled by `-1 / ((1 - pi1) log(1 - pi1))`; the
  mixture is clamped at 1e-7 before its log, as in the official code."""
  onehot = jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype)
  p = jax.nn.softmax(logits, axis=-1)
  log_mix = jnp.log(jnp.clip(pi1 * onehot + (1.0 - pi1) * p, JS_MIX_MIN, 1.0))

  def kl_to_mix(target):   # sum_k t_k (log t_k - log m_k) over t_k > 0
    safe_log = jnp.log(jnp.maximum(target, 1e-7))
    return jnp.sum(jnp.where(target > 0, target * (safe_log - log_mix), 0.0),
                   axis=-1)

  scale = -1.0 / ((1.0 - pi1) * jnp.log(1.0 - pi1))
  return scale * (pi1 * kl_to_mix(onehot) + (1.0 - pi1) * kl_to_mix(p))

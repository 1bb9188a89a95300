"""DC-PDD: pretraining-data detection by divergence-based calibration.

Paper: Pretraining Data Detection for Large Language Models: A
Divergence-based Calibration Method, Zhang et al. 2024,
arXiv:2409.14781.
Official code: https://github.com/zhang-wei-chao/DC-PDD
(`com_fre_dis.py` counts token frequencies on a reference corpus,
`com_det_sco.py` scores texts and the baselines).

Given a text's target tokens x_1..x_T, the model's probabilities p(x_i) of
them and a reference token-frequency distribution f (counts over a
reference corpus, Laplace-smoothed: (count + 1) / (N + V)), DC-PDD keeps
the first occurrence of each distinct token and scores

    s = mean_i min(p(x_i) * log(1 / f(x_i)), a)

the per-token cross-entropy between the probability and the frequency
distributions, clipped at `a` so a few tokens cannot dominate. A rare
token the model predicts confidently is evidence of membership; a common
token predicted confidently is not (the failure of Min-K% Prob the paper
names).

Sign convention here: every score is "higher = more likely a member"
(the official script stores the negatives, "larger for non-member", and
negates again inside its ROC sweep; the AUROCs are identical). Baselines:
the mean log-likelihood (perplexity attack), Min-K% Prob (mean of the k%
lowest token log-probs) and the zlib ratio (log-likelihood / zlib bytes).
All functions take padded `[B, T]` arrays with a `mask`.
"""

from __future__ import annotations

import zlib

import jax
import jax.numpy as jnp
import numpy as np
from sklearn import metrics as sk_metrics


def smoothed_frequencies(counts: np.ndarray) -> np.ndarray:
  """`[V]` Laplace-smoothed token frequencies (count + 1) / (N + V)."""
  counts = np.asarray(counts, np.float64)
  if counts.ndim != 1 or np.any(counts < 0):
    raise ValueError("counts must be a [V] array of non-negative counts")
  return (counts + 1.0) / (counts.sum() + counts.size)


def first_occurrence(token_ids: jax.Array, mask: jax.Array) -> jax.Array:
  """`[B, T]` bool: counted positions whose token did not occur at an
  earlier counted position of the same row (O(T^2) compares)."""
  same = token_ids[:, :, None] == token_ids[:, None, :]      # [B, T, T]
  t = token_ids.shape[1]
  earlier = jnp.tril(jnp.ones((t, t), bool), k=-1)[None]
  seen = jnp.any(same & earlier & mask[:, None, :], axis=-1)
  return mask & ~seen


@jax.jit
def dc_pdd_score(log_probs: jax.Array, token_ids: jax.Array, mask: jax.Array,
                 frequencies: jax.Array, a: jax.Array) -> jax.Array:
  """`[B]` DC-PDD scores.

  Args:
    log_probs: `[B, T]` log p(x_i) of each target token under the model.
    token_ids: `[B, T]` int target tokens.
    mask: `[B, T]` bool, the counted targets.
    frequencies: `[V]` reference token frequencies (`smoothed_frequencies`).
    a: the clipping bound (the official default 0.01).
  """
  keep = first_occurrence(token_ids, mask.astype(bool))
  ce = jnp.exp(log_probs) * -jnp.log(frequencies[token_ids])
  ce = jnp.minimum(ce, a)
  n = jnp.maximum(jnp.sum(keep, axis=1), 1)
  return jnp.sum(jnp.where(keep, ce, 0.0), axis=1) / n


@jax.jit
def loss_score(log_probs: jax.Array, mask: jax.Array) -> jax.Array:
  """`[B]` mean token log-likelihood (the perplexity attack)."""
  m = mask.astype(log_probs.dtype)
  return jnp.sum(log_probs * m, axis=1) / jnp.maximum(jnp.sum(m, axis=1), 1)


def min_k_score(log_probs: jax.Array, mask: jax.Array, k: float = 0.2
                ) -> jax.Array:
  """`[B]` Min-K% Prob: mean of the int(k * n) lowest log-probs of each
  row's n counted tokens (at least one)."""
  if not 0.0 < k <= 1.0:
    raise ValueError(f"k={k} must be in (0, 1]")
  return _min_k(log_probs, mask, jnp.float32(k))


@jax.jit
def _min_k(log_probs, mask, k):
  mask = mask.astype(bool)
  n = jnp.sum(mask, axis=1)
  count = jnp.maximum(jnp.floor(n * k).astype(jnp.int32), 1)
  ordered = jnp.sort(jnp.where(mask, log_probs, jnp.inf), axis=1)
  take = jnp.arange(log_probs.shape[1])[None] < count[:, None]
  return jnp.sum(jnp.where(take, ordered, 0.0), axis=1) / count


def zlib_score(log_probs: np.ndarray, mask: np.ndarray, texts: list[str]
               ) -> np.ndarray:
  """`[B]` mean log-likelihood divided by the zlib-compressed UTF-8 size
  of each row's text (the official `-log(ppl) / zlib`)."""
  sizes = np.array([len(zlib.compress(t.encode("utf-8"))) for t in texts],
                   np.float64)
  return np.asarray(loss_score(log_probs, mask), np.float64) / sizes


def auroc(scores: np.ndarray, is_member: np.ndarray) -> float:
  """Area under the ROC curve of `scores` (higher = member)."""
  return float(sk_metrics.roc_auc_score(np.asarray(is_member, bool),
                                        np.asarray(scores, np.float64)))


def tpr_at_fpr(scores: np.ndarray, is_member: np.ndarray,
               fpr: float = 0.05) -> float:
  """True-positive rate at the last ROC point with false-positive rate
  below `fpr` (the official `tpr[np.where(fpr < 0.05)[0][-1]]`)."""
  f, t, _ = sk_metrics.roc_curve(np.asarray(is_member, bool),
                                 np.asarray(scores, np.float64))
  return float(t[np.where(f < fpr)[0][-1]])

"""Language-model analysis metrics: likelihoods, entropies, repetition.

Pure `jnp` functions on `[B, T]` token arrays (and `[B, T, V]` logits) with
`[B, T]` masks (1 / True where a position counts), jittable and usable
unchanged on a 7B model's tensors. They are the shared evaluation helpers
of the LM papers (hyperfitting, token_crisis, dc_pdd, ead, ...).

Definitions:

* `token_log_likelihood(logits, targets) [B, T]`: `log p(target_t |
  context)` from the logits at position t (the logits already predict
  `targets`; no shift happens here).
* `sequence_log_likelihood(logits, targets, mask) [B]`: the sum of the
  masked per-token log-likelihoods (`per_token=True`: their mean, the
  negative of the per-token held-out loss).
* `token_entropy(logits) [B, T]`: the Shannon entropy (nats) of each
  position's predictive distribution; `top_token_probability` its largest
  probability (hyperfitted models put nearly all mass on one token).
* `unique_ngram_count(tokens, mask, n) [B]`: the number of distinct
  n-grams among the n-grams whose n tokens are all inside the mask.
* `type_token_ratio(tokens, mask) [B]`: distinct tokens / counted tokens
  (the TTR of the hyperfitting paper, Table 1, computed there on words of
  the generated text; here on whatever units `tokens` holds).
* `repeated_ngram_rate(tokens, mask, n) [B]`: the fraction of counted
  n-grams that already occurred earlier in the same row,
  `1 - unique / total` (the `rep-n` of Welleck et al. 2019, "Neural Text
  Generation with Unlikelihood Training", arXiv 1908.04319).

Rows with nothing counted give 0 (TTR, repetition) rather than NaN, so a
mean over a batch stays finite; pass the counts (`ngram_count`) to weight.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


def _mask(mask: jax.Array | None, shape: tuple[int, ...]) -> jax.Array:
  """A boolean `[B, T]` mask (all True when None)."""
  if mask is None:
    return jnp.ones(shape, bool)
  if mask.shape != shape:
    raise ValueError(f"mask shape {mask.shape} != tokens shape {shape}")
  return mask.astype(bool)


def token_log_likelihood(logits: jax.Array, targets: jax.Array
                         ) -> jax.Array:
  """`[B, T]` log-probabilities of `targets` [B, T] under `logits`
  [B, T, V] (float32)."""
  logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  return jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]


def sequence_log_likelihood(logits: jax.Array, targets: jax.Array,
                            mask: jax.Array | None = None, *,
                            per_token: bool = False) -> jax.Array:
  """`[B]` summed (or, `per_token=True`, mean) log-likelihood of each row's
  masked targets.

  Args:
    logits: `[B, T, V]` next-token logits aligned with `targets`.
    targets: `[B, T]` int token ids.
    mask: `[B, T]`, 1 where a target counts (None: all).
    per_token: divide by the row's count of masked targets (0 if none).
  """
  mask = _mask(mask, targets.shape).astype(jnp.float32)
  total = jnp.sum(token_log_likelihood(logits, targets) * mask, axis=-1)
  if per_token:
    return total / jnp.maximum(jnp.sum(mask, axis=-1), 1.0)
  return total


def token_entropy(logits: jax.Array) -> jax.Array:
  """`[...]` entropy in nats of `softmax(logits)` over the last axis
  (`[B, T, V] -> [B, T]`), computed from log-probabilities so a
  one-hot-like distribution gives 0, not NaN."""
  logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  return -jnp.sum(jnp.exp(logp) * logp, axis=-1)


def top_token_probability(logits: jax.Array) -> jax.Array:
  """`[...]` largest probability of `softmax(logits)` over the last axis."""
  return jnp.max(jax.nn.softmax(logits.astype(jnp.float32), axis=-1),
                 axis=-1)


def masked_row_mean(values: jax.Array, mask: jax.Array | None = None
                    ) -> jax.Array:
  """`[B]` mean of `values` [B, T] over each row's masked entries (0 if
  none)."""
  mask = _mask(mask, values.shape).astype(jnp.float32)
  return (jnp.sum(values * mask, axis=-1)
          / jnp.maximum(jnp.sum(mask, axis=-1), 1.0))


def _ngrams(tokens: jax.Array, mask: jax.Array, n: int
            ) -> tuple[jax.Array, jax.Array]:
  """`([B, T-n+1, n] n-grams, [B, T-n+1] valid)`: window i is tokens
  i..i+n-1, valid when all n are masked in."""
  t = tokens.shape[-1]
  windows = t - n + 1
  grams = jnp.stack([tokens[:, k:k + windows] for k in range(n)], axis=-1)
  valid = jnp.all(jnp.stack([mask[:, k:k + windows] for k in range(n)],
                            axis=-1), axis=-1)
  return grams, valid


def _check_n(n: int, tokens: jax.Array) -> None:
  if not isinstance(n, int) or n < 1:
    raise ValueError(f"n={n!r}; allowed: an int >= 1")
  if tokens.ndim != 2:
    raise ValueError(f"expected [B, T] tokens, got shape {tokens.shape}")


@functools.partial(jax.jit, static_argnames=("n",))
def ngram_count(tokens: jax.Array, mask: jax.Array | None = None,
                n: int = 1) -> jax.Array:
  """`[B]` number of n-grams lying wholly inside each row's mask."""
  _check_n(n, tokens)
  if n > tokens.shape[-1]:
    return jnp.zeros(tokens.shape[:1], jnp.int32)
  _, valid = _ngrams(tokens, _mask(mask, tokens.shape), n)
  return jnp.sum(valid, axis=-1, dtype=jnp.int32)


@functools.partial(jax.jit, static_argnames=("n",))
def unique_ngram_count(tokens: jax.Array, mask: jax.Array | None = None,
                       n: int = 1) -> jax.Array:
  """`[B]` number of distinct n-grams among each row's counted n-grams.

  Sort-based (O(T log T) time, O(T n) memory, no hashing, so no
  collisions at any vocabulary size): the n-grams are sorted
  lexicographically with invalid ones last, and a valid row starts a new
  type where it differs from its predecessor.
  """
  _check_n(n, tokens)
  if n > tokens.shape[-1]:
    return jnp.zeros(tokens.shape[:1], jnp.int32)
  grams, valid = _ngrams(tokens, _mask(mask, tokens.shape), n)

  def one_row(g, v):   # [W, n], [W]
    # lexsort: the last key is the primary one; invalid windows sort last.
    keys = [g[:, k] for k in range(n - 1, -1, -1)] + [~v]
    order = jnp.lexsort(keys)
    g, v = g[order], v[order]
    new = jnp.concatenate([jnp.ones((1,), bool),
                           jnp.any(g[1:] != g[:-1], axis=-1)])
    return jnp.sum(new & v, dtype=jnp.int32)

  return jax.vmap(one_row)(grams, valid)


@jax.jit
def type_token_ratio(tokens: jax.Array, mask: jax.Array | None = None
                     ) -> jax.Array:
  """`[B]` distinct tokens / counted tokens of each row (0 if none)."""
  count = ngram_count(tokens, mask, 1)
  return (unique_ngram_count(tokens, mask, 1)
          / jnp.maximum(count, 1)).astype(jnp.float32)


@functools.partial(jax.jit, static_argnames=("n",))
def repeated_ngram_rate(tokens: jax.Array, mask: jax.Array | None = None,
                        n: int = 4) -> jax.Array:
  """`[B]` fraction of each row's counted n-grams that repeat an earlier
  n-gram of the same row, `1 - unique / total` (0 if none counted)."""
  count = ngram_count(tokens, mask, n)
  unique = unique_ngram_count(tokens, mask, n)
  return jnp.where(count > 0, 1.0 - unique / jnp.maximum(count, 1),
                   0.0).astype(jnp.float32)

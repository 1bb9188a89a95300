"""Tests of the LM analysis metrics: hand-computed cases and invariances."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from common.eval import lm_metrics


def _brute_unique(row, mask_row, n):
  """Distinct n-grams of one row by a Python set (the reference)."""
  grams = [tuple(row[i:i + n]) for i in range(len(row) - n + 1)
           if all(mask_row[i:i + n])]
  return len(set(grams)), len(grams)


def test_repetition_by_hand():
  tokens = jnp.array([[1, 2, 1, 2, 1, 2],
                      [5, 6, 7, 8, 9, 4],
                      [3, 3, 3, 3, 0, 0]])
  mask = jnp.array([[1] * 6, [1] * 6, [1, 1, 1, 1, 0, 0]])
  # Row 0: types {1, 2} of 6 tokens; bigrams 12 21 12 21 12: 2 unique of 5.
  np.testing.assert_allclose(lm_metrics.type_token_ratio(tokens, mask),
                             [2 / 6, 1.0, 1 / 4])
  np.testing.assert_allclose(lm_metrics.repeated_ngram_rate(tokens, mask, 2),
                             [3 / 5, 0.0, 2 / 3])
  # 4-grams of row 0: 1212 2121 1212: 1 repeat of 3.
  np.testing.assert_allclose(lm_metrics.repeated_ngram_rate(tokens, mask, 4),
                             [1 / 3, 0.0, 0.0])
  np.testing.assert_array_equal(lm_metrics.ngram_count(tokens, mask, 4),
                                [3, 3, 1])


def test_repetition_matches_a_set_reference_and_is_invariant():
  rng = np.random.default_rng(0)
  tokens = rng.integers(0, 5, size=(6, 40))
  mask = rng.random((6, 40)) < 0.8
  for n in (1, 2, 3):
    got = lm_metrics.unique_ngram_count(jnp.asarray(tokens),
                                        jnp.asarray(mask), n)
    ref = [_brute_unique(r, m, n)[0] for r, m in zip(tokens, mask)]
    np.testing.assert_array_equal(got, ref)
  # Renaming the vocabulary (a permutation of ids) changes nothing.
  perm = rng.permutation(50_000)[:5] + 7
  for fn in (lm_metrics.type_token_ratio,
             lambda t, m: lm_metrics.repeated_ngram_rate(t, m, 3)):
    np.testing.assert_allclose(fn(jnp.asarray(perm[tokens]), mask),
                               fn(jnp.asarray(tokens), mask))
  # Masked-out positions are never read.
  noisy = np.where(mask, tokens, rng.integers(100, 200, size=tokens.shape))
  np.testing.assert_allclose(
      lm_metrics.repeated_ngram_rate(jnp.asarray(noisy), mask, 2),
      lm_metrics.repeated_ngram_rate(jnp.asarray(tokens), mask, 2))


def test_empty_rows_and_bad_n():
  tokens = jnp.zeros((2, 3), jnp.int32)
  mask = jnp.zeros((2, 3))
  np.testing.assert_array_equal(lm_metrics.type_token_ratio(tokens, mask), 0)
  np.testing.assert_array_equal(
      lm_metrics.repeated_ngram_rate(tokens, None, 5), 0)   # n > T
  with pytest.raises(ValueError, match="n=0"):
    lm_metrics.repeated_ngram_rate(tokens, mask, 0)


def test_likelihood_and_entropy_by_hand():
  v = 4
  logits = jnp.log(jnp.array([[[0.7, 0.1, 0.1, 0.1],
                               [0.25, 0.25, 0.25, 0.25]]]))
  targets = jnp.array([[0, 3]])
  mask = jnp.array([[1, 0]])
  np.testing.assert_allclose(
      lm_metrics.token_log_likelihood(logits, targets),
      [[np.log(0.7), np.log(0.25)]], rtol=1e-6)
  np.testing.assert_allclose(
      lm_metrics.sequence_log_likelihood(logits, targets),
      [np.log(0.7) + np.log(0.25)], rtol=1e-6)
  np.testing.assert_allclose(
      lm_metrics.sequence_log_likelihood(logits, targets, mask,
                                         per_token=True),
      [np.log(0.7)], rtol=1e-6)
  h = -(0.7 * np.log(0.7) + 3 * 0.1 * np.log(0.1))
  np.testing.assert_allclose(lm_metrics.token_entropy(logits),
                             [[h, np.log(v)]], rtol=1e-6)
  np.testing.assert_allclose(lm_metrics.top_token_probability(logits),
                             [[0.7, 0.25]], rtol=1e-6)
  np.testing.assert_allclose(
      lm_metrics.masked_row_mean(lm_metrics.token_entropy(logits), mask),
      [h], rtol=1e-6)
  # A shift of all logits changes nothing; a one-hot limit has entropy 0.
  np.testing.assert_allclose(lm_metrics.token_entropy(logits + 3.0),
                             lm_metrics.token_entropy(logits), rtol=1e-6)
  peaked = jnp.array([[[1e4, 0.0, 0.0]]])
  assert float(lm_metrics.token_entropy(peaked)[0, 0]) == 0.0


def test_metrics_jit():
  tokens = jnp.array([[1, 2, 1, 2]])
  f = jax.jit(lambda t: lm_metrics.repeated_ngram_rate(t, None, 2))
  np.testing.assert_allclose(f(tokens), [1 / 3])

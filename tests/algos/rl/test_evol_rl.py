"""EVOL-RL and TTRL rewards: bands, edge cases, n-gram embedding, errors."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from algos.rl import evol_rl


@functools.cache
def _rewards():
  return jax.jit(evol_rl.group_evol_rl_rewards)


def test_majority_ties_and_invalid():
  answers = jnp.array([[5, 3, 3, 5, 9, 9], [1, 1, 1, 2, 2, 2]])
  valid = jnp.array([[True, True, True, True, False, False]] + [[True] * 6])
  label, ttrl = jax.jit(lambda a, v: (
      jax.vmap(evol_rl.majority_vote)(a, v)[0],
      evol_rl.group_ttrl_rewards(a, v)))(answers, valid)
  # invalid 9s never vote; 5 and 3 tie -> 5 (met first); 1 vs 2 tie -> 1
  np.testing.assert_array_equal(label, [5, 1])
  np.testing.assert_array_equal(ttrl, [[1, 0, 0, 1, 0, 0], [1, 1, 1, 0, 0, 0]])


def test_bands_novelty_order_and_edge_cases():
  rng = np.random.default_rng(0)
  g, d = 8, 5
  emb = rng.normal(size=(5, g, d)).astype(np.float32)
  emb[0, 1] = emb[0, 0]              # 0 and 1 duplicates: least novel
  emb[1] = 1.0                       # no novelty information: midpoints
  maj = [4, 4, 4, 4, 4, 7, 7, 1]
  answers = jnp.array([maj, maj, [2, 2, 2, 3, 0, 5, 5, 6],
                       list(range(g)), list(range(g))])
  valid = np.ones((5, g), bool)
  valid[2, 3:] = [True, False, False, False, False]   # lone minority 3
  valid[3, 1:] = False                                # one valid response
  valid[4] = False                                    # none valid
  r = np.asarray(_rewards()(answers, jnp.asarray(valid), jnp.asarray(emb),
                            0.5))
  assert np.all((r[0, :5] >= 0.5) & (r[0, :5] <= 1.0))
  assert np.all((r[0, 5:] >= -1.0) & (r[0, 5:] <= -0.5))
  assert r[0, :5].max() == 1.0 and r[0, :5].min() == 0.5
  assert r[0, 0] == r[0, 1] == 0.5    # the duplicated pair is least novel
  np.testing.assert_allclose(r[1], [0.75] * 5 + [-0.75] * 3)
  assert r[2, 3] == -0.5 and np.all(r[2, 4:] == -1.0)  # lone; invalid
  np.testing.assert_array_equal(r[3:], -1.0)


def test_ngram_embedding():
  toks = jnp.array([[1, 2, 3, 4, 0], [1, 2, 3, 4, 9], [5, 6, 7, 8, 0]])
  mask = jnp.array([[1, 1, 1, 1, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 0]])
  e, s = jax.jit(lambda t, m: (
      lambda e: (e, evol_rl.similarity_matrix(e)))(
          evol_rl.bag_of_ngrams_embedding(t, m, dim=64, n=2)))(toks, mask)
  np.testing.assert_allclose(e.sum(-1), 3.0)     # 3 bigrams inside mask
  np.testing.assert_allclose(e[0], e[1])         # masked tail ignored
  assert s[0, 1] > 0.999 and s[0, 2] < 0.6


def test_bad_input():
  with pytest.raises(ValueError, match="G >= 2"):
    evol_rl.ttrl_rewards(jnp.array([1]), jnp.array([True]))
  with pytest.raises(ValueError, match=r"\[G, D\]"):
    evol_rl.evol_rl_rewards(jnp.array([1, 2]), jnp.array([True, True]),
                            jnp.ones((3, 4)))

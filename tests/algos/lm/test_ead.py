"""Entropy Adaptive Decoding (`algos.lm.ead`): the switching rule, its
limits against single-model decoding, cost accounting, bad inputs."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from algos.lm import ead
from common.models import decoding
from common.models import transformer as transformer_lib

_V = 24


@functools.cache
def _pair():
  def make(layers, d, seed):
    cfg = transformer_lib.TransformerConfig(
        vocab_size=_V, num_layers=layers, d_model=d, num_heads=2, d_ff=2 * d,
        max_len=16)
    model = transformer_lib.Transformer(cfg)
    params = model.init(jax.random.PRNGKey(seed), jnp.zeros((1, 4), jnp.int32),
                        train=False)["params"]
    # Larger logits than at init, so entropies spread over (0, log V).
    params = jax.tree.map(lambda x: x * 3.0, params)
    return model, params
  prompt = jnp.array([[1, 5, 7, 0], [2, 3, 0, 0], [4, 4, 4, 9]], jnp.int32)
  lengths = jnp.array([3, 2, 4], jnp.int32)
  return make(1, 8, 0), make(2, 16, 1), prompt, lengths


def _run(**kw):
  (small, ps), (large, pl), prompt, lengths = _pair()
  return ead.ead_generate(small, ps, large, pl, prompt, lengths,
                          jax.random.PRNGKey(0), max_new_tokens=8,
                          window=3, **kw)


def test_switching_rule_and_its_limits():
  (small, ps), (large, pl), prompt, lengths = _pair()
  greedy = lambda m, p: decoding.generate(
      m, p, prompt, lengths, jax.random.PRNGKey(0), max_new_tokens=8,
      greedy=True)["tokens"]
  compiled = ead._ead._cache_size()  # pylint: disable=protected-access
  # Above every entropy: the small model alone; p_large = 1: the large one.
  never = _run(threshold=math.log(_V))
  np.testing.assert_array_equal(never["tokens"], greedy(small, ps))
  assert float(never["use_large"].sum()) == 0
  always = _run(threshold=math.log(_V), mode="random", p_large=1.0)
  np.testing.assert_array_equal(always["tokens"], greedy(large, pl))
  # In between: the large model chose token t iff the mean of the small
  # model's last (up to) 3 entropies before t exceeds the threshold.
  ent = np.asarray(never["entropies"])
  threshold = float(np.median(ent))
  out = _run(threshold=threshold)
  ent = np.asarray(out["entropies"])
  use = np.asarray(out["use_large"])
  for t in range(8):
    window = ent[:, max(0, t - 3):t]
    rolling = window.mean(1) if t else np.zeros(len(ent))
    np.testing.assert_array_equal(use[:, t], rolling > threshold)
  assert 0 < use.mean() < 1
  # The threshold, mode and p_large are traced: the calls above compiled
  # once.
  assert ead._ead._cache_size() - compiled == 1  # pylint: disable=protected-access


def test_cost_accounting_and_rolling_mean():
  use = jnp.array([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
  n = jnp.array([4, 2])
  small = ead.compute_cost(use, n, 1.0, 10.0, "small")
  active = ead.compute_cost(use, n, 1.0, 10.0, "active")
  assert small["large_share"] == pytest.approx(2 / 6)
  assert small["relative_compute"] == pytest.approx((6 + 20) / 60)
  assert active["relative_compute"] == pytest.approx((4 + 20) / 60)
  # The paper's accounting: 43% of tokens on 11B, 3B otherwise -> -41.5%.
  use = jnp.array([[1.0] * 43 + [0.0] * 57])
  paper = ead.compute_cost(use, jnp.array([100]), 3.0, 11.0, "active")
  assert 1 - paper["relative_compute"] == pytest.approx(0.415, abs=2e-3)
  hist = jnp.array([[1.0, 2.0, 3.0], [5.0, 0.0, 0.0]])
  np.testing.assert_allclose(ead.rolling_entropy(hist, jnp.array([7, 1])),
                             [2.0, 5.0])


def test_bad_inputs_are_one_line_errors():
  for bad in (-0.1, math.log(_V) + 0.01):
    with pytest.raises(ValueError, match=r"outside the entropy range; "
                       r"allowed \[0, log V\]") as e:
      _run(threshold=bad)
    assert "\n" not in str(e.value)
  with pytest.raises(ValueError, match="monitor='x'"):
    _run(threshold=1.0, monitor="x")

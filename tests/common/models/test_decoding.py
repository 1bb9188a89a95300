"""Decoding: cached == uncached (greedy and seeded sampling, ragged
prompts), top-k=1 == greedy, the nucleus rule, log-probs == a full forward,
eos stopping, the max_len error. Two compilations (cached, uncached) serve
every test: the sampling knobs are traced."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from common.models import decoding
from common.models import transformer as tm

# test_transformer's model (its init compilation is shared via the cache).
CONFIG = tm.TransformerConfig(vocab_size=50, num_layers=2, d_model=32,
                              num_heads=4, num_kv_heads=2, d_ff=48,
                              max_len=32)
PROMPT = jnp.array([[5, 6, 7, 8, 9], [11, 12, 13, 0, 0], [3, 0, 0, 0, 0]])
LENGTHS = jnp.array([5, 3, 1])
NEW = 8


@pytest.fixture(scope="module")
def setup():
  model = tm.Transformer(CONFIG)
  params = jax.jit(model.init)(jax.random.PRNGKey(0),
                               jnp.zeros((1, 8), jnp.int32))["params"]
  # Larger weights: a peaked, prompt-dependent distribution.
  params = jax.tree.map(lambda x: x * 4.0, params)
  return model, params


def _run(setup, use_cache, **kwargs):
  model, params = setup
  return jax.tree.map(np.asarray, decoding.generate(
      model, params, PROMPT, LENGTHS, jax.random.PRNGKey(7),
      max_new_tokens=NEW, use_cache=use_cache, **kwargs))


@pytest.mark.parametrize("knobs", [
    {"greedy": True},
    {"temperature": 0.8, "top_k": 12, "top_p": 0.9},
])
def test_cached_equals_uncached(setup, knobs):
  cached, full = _run(setup, True, **knobs), _run(setup, False, **knobs)
  np.testing.assert_array_equal(cached["tokens"], full["tokens"])
  np.testing.assert_allclose(cached["logprobs"], full["logprobs"], atol=1e-5)
  np.testing.assert_allclose(cached["entropies"], full["entropies"],
                             atol=1e-5)
  np.testing.assert_array_equal(cached["lengths"], LENGTHS + NEW)
  # The prompts come back in place, the continuation right after them.
  for row, n in enumerate(np.asarray(LENGTHS)):
    np.testing.assert_array_equal(cached["tokens"][row, :n], PROMPT[row, :n])


def test_top_k_one_is_greedy_and_logprobs_match_a_forward(setup):
  greedy = _run(setup, True, greedy=True)
  top1 = _run(setup, True, top_k=1)
  np.testing.assert_array_equal(top1["tokens"], greedy["tokens"])
  sampled = _run(setup, True, temperature=1.0)
  model, params = setup
  logits = jax.jit(model.apply)({"params": params},
                                jnp.asarray(sampled["tokens"]))[
      "logits"]
  logp = np.asarray(jax.nn.log_softmax(logits, -1))
  for row, n in enumerate(np.asarray(LENGTHS)):
    steps = np.arange(NEW)
    want = logp[row, n - 1 + steps, sampled["tokens"][row, n + steps]]
    np.testing.assert_allclose(sampled["logprobs"][row], want, atol=1e-5)
    ent = -(np.exp(logp[row, n - 1 + steps]) *
            logp[row, n - 1 + steps]).sum(-1)
    np.testing.assert_allclose(sampled["entropies"][row], ent, atol=1e-4)
  assert len(set(map(tuple, sampled["tokens"][:, 5:].tolist()))) > 1


def test_nucleus_keeps_the_smallest_set_reaching_p():
  logits = jnp.log(jnp.array([[0.05, 0.5, 0.15, 0.3]]))
  kept = lambda k, p: np.isfinite(np.asarray(
      decoding.filter_logits(logits, jnp.int32(k), jnp.float32(p))))[0]
  np.testing.assert_array_equal(kept(0, 0.4), [0, 1, 0, 0])
  np.testing.assert_array_equal(kept(0, 0.7), [0, 1, 0, 1])
  np.testing.assert_array_equal(kept(0, 0.85), [0, 1, 1, 1])
  np.testing.assert_array_equal(kept(0, 1.0), [1, 1, 1, 1])
  np.testing.assert_array_equal(kept(3, 1.0), [0, 1, 1, 1])
  np.testing.assert_array_equal(kept(3, 0.7), [0, 1, 0, 1])


def test_eos_stops_rows(setup):
  greedy = _run(setup, True, greedy=True)
  eos = int(greedy["tokens"][0, 5 + 1])       # row 0's second new token
  first = int(np.argmax(greedy["tokens"][0, 5:] == eos))
  out = _run(setup, True, greedy=True, eos_id=eos)
  assert out["lengths"][0] == 5 + first + 1
  assert np.all(out["tokens"][0, 5 + first:] == eos)
  assert np.all(out["logprobs"][0, first + 1:] == 0)
  for row in range(3):
    n = out["lengths"][row]
    np.testing.assert_array_equal(out["tokens"][row, :n],
                                  greedy["tokens"][row, :n])


def test_over_long_is_one_line(setup):
  model, params = setup
  with pytest.raises(ValueError, match="exceeds the model's max_len 32") as e:
    decoding.generate(model, params, PROMPT, LENGTHS, jax.random.PRNGKey(0),
                      max_new_tokens=28)
  assert "\n" not in str(e.value)

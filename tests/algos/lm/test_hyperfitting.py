"""Hyperfitting's evaluator pieces on known inputs."""

import jax.numpy as jnp
import ml_collections as mlc
import numpy as np
import pytest

from algos.lm import hyperfitting


def test_generation_metrics_by_hand():
  # Prompt of 2 tokens, 8 generated; row 1 stopped (EOS) after 4.
  tokens = jnp.array([[9, 9, 1, 2, 3, 1, 2, 3, 1, 2],
                      [9, 9, 5, 5, 5, 5, 0, 0, 0, 0]])
  lengths = jnp.array([10, 6])
  entropies = jnp.array([[1.0] * 8, [2.0] * 4 + [100.0] * 4])
  out = hyperfitting.generation_metrics(
      tokens, lengths, entropies, prompt_len=2, ttr_window=4, ngram=2)
  # TTR of the last 4 generated tokens: row 0 generated 1 2 3 1 2 3 1 2,
  # last 4 = 2 3 1 2 -> 3/4; row 1: 5 5 5 5 -> 1/4.
  np.testing.assert_allclose(out["ttr"], (3 / 4 + 1 / 4) / 2)
  # rep-2: row 0 bigrams 12 23 31 12 23 31 12: 3 unique of 7 -> 4/7;
  # row 1: 55 55 55 -> 2/3 (the padding after EOS is not counted).
  np.testing.assert_allclose(out["rep2"], (4 / 7 + 2 / 3) / 2, rtol=1e-6)
  np.testing.assert_allclose(out["entropy"], 1.5)


def test_held_out_prompts_stay_inside_one_document():
  seg = np.array([[1] * 6, [1, 1, 2, 2, 2, 2], [0] * 6, [3] * 6])
  tokens = np.arange(24).reshape(4, 6)
  batches = [{"tokens": tokens[:2], "segment_ids": seg[:2]},
             {"tokens": tokens[2:], "segment_ids": seg[2:]}]
  prompts = hyperfitting.held_out_prompts(iter(batches), 2, 3)
  np.testing.assert_array_equal(prompts, [[0, 1, 2], [18, 19, 20]])
  with pytest.raises(ValueError, match="num_prompts"):
    hyperfitting.held_out_prompts(iter(batches), 3, 3)


def test_generation_settings_are_checked():
  config = mlc.ConfigDict(dict(eval=dict(name="hyperfitting",
                                         generation=dict(top_p=0.5))))
  assert hyperfitting.generation_config(config)["top_p"] == 0.5
  config.eval.generation.topp = 0.5
  with pytest.raises(ValueError, match="allowed"):
    hyperfitting.generation_config(config)

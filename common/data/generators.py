"""General-purpose procedural sources (see `common.data.procedural`).

* `gaussian_blobs`: `C` Gaussian classes in `d` dimensions (vectors under
  "x", labels under "label"); a quick classification task for harness
  tests and tutorials. Settings in `config.data.kwargs`: `num_classes`,
  `dim`, `separation`.
* `token_copy`: token sequences whose second half repeats the first, with a
  `loss_mask` on the copied half and a random number of padded positions
  at the end of each sequence (so examples weigh differently): a tiny
  language-modelling task for the token path of the train step. Settings:
  `vocab_size`, `length` (even).

Both draw every batch from the key alone, so they resume exactly and give
the same batch on 1 or N devices.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from common.data import procedural


@procedural.register_generator("gaussian_blobs")
def gaussian_blobs(config: Any) -> procedural.Generator:
  kw = procedural.settings(config, {"num_classes": 3, "dim": 8, "separation": 3.0})
  c, d = int(kw["num_classes"]), int(kw["dim"])
  centers = kw["separation"] * jax.random.normal(jax.random.PRNGKey(1234),
                                                 (c, d)) / jnp.sqrt(d)

  def sample(rng, n):
    k_label, k_noise = jax.random.split(rng)
    label = jax.random.randint(k_label, (n,), 0, c)
    x = centers[label] + jax.random.normal(k_noise, (n, d))
    return {"x": x, "label": label, "mask": jnp.ones((n,), bool)}

  return procedural.Generator(
      sample=sample, example=procedural.example_from(sample), num_classes=c,
      epoch_size=1024, eval_examples=512)


@procedural.register_generator("token_copy")
def token_copy(config: Any) -> procedural.Generator:
  kw = procedural.settings(config, {"vocab_size": 16, "length": 16})
  vocab, length = int(kw["vocab_size"]), int(kw["length"])
  if length % 2 or length < 4:
    raise ValueError(f"token_copy: length={length} must be even and >= 4")
  half = length // 2

  def sample(rng, n):
    k_tok, k_pad = jax.random.split(rng)
    first = jax.random.randint(k_tok, (n, half), 1, vocab)   # 0 = padding
    tokens = jnp.concatenate([first, first], axis=1)
    pad = jax.random.randint(k_pad, (n, 1), 0, half)          # [0, half)
    pos = jnp.arange(length)[None]
    valid = pos < length - pad
    tokens = jnp.where(valid, tokens, 0)
    # Targets are the next tokens; the loss counts the copied half only.
    loss_mask = (pos >= half - 1) & (pos < length - 1) & (pos + 1 < length
                                                          - pad)
    return {"tokens": tokens.astype(jnp.int32), "loss_mask": loss_mask}

  return procedural.Generator(
      sample=sample, example=procedural.example_from(sample), num_classes=0,
      epoch_size=1024, eval_examples=256)

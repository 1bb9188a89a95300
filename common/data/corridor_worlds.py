"""Generator `corridor_worlds`: worlds of the `text_corridor` environment.

A batch is `n` procedurally drawn worlds (`common.envs.text_corridor`):

  {"prompt": [n, 3] int32 (bos + the first observation),
   "prompt_length": [n] int32 (3), "length": [n] int32 corridor lengths,
   "key_pos": [n] int32, "label": [n] int32 (0), "mask": [n] bool}

for the multi-turn rollout `text_corridor` (`algos/rl/epo.py`), which plays
G episodes in each. Settings (`config.data.kwargs`): `min_length`,
`max_length` (training worlds), `ood_min_length`, `ood_max_length` (the
evaluator's out-of-distribution worlds: longer corridors). Held-out worlds
are drawn with keys training never uses.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from common import config as config_lib
from common.data import procedural
from common.envs import text_corridor as tc

DEFAULTS = {"min_length": 4, "max_length": 7, "ood_min_length": 8,
            "ood_max_length": 9}
RULES = {k: config_lib.at_least(3, integer=True) for k in DEFAULTS}
EPOCH_SIZE = 1024


def settings(config: Any) -> dict[str, Any]:
  kw = procedural.settings(config, DEFAULTS, RULES)
  for lo, hi in (("min_length", "max_length"),
                 ("ood_min_length", "ood_max_length")):
    if kw[lo] > kw[hi]:
      raise ValueError(f"data.kwargs.{lo}={kw[lo]} > {hi}={kw[hi]}; "
                       f"allowed: {lo} <= {hi}")
  return kw


def sampler(min_length: int, max_length: int):
  """`sample(rng, n)` of worlds with lengths in [min_length, max_length]."""
  def sample(rng: jax.Array, n: int) -> dict[str, jax.Array]:
    worlds = tc.draw_worlds(rng, n, min_length, max_length)
    return {"prompt": tc.prompts(worlds),
            "prompt_length": jnp.full((n,), 3, jnp.int32), **worlds,
            "label": jnp.zeros((n,), jnp.int32),
            "mask": jnp.ones((n,), bool)}
  return sample


@procedural.register_generator("corridor_worlds")
def make(config: Any) -> procedural.Generator:
  kw = settings(config)
  sample = sampler(kw["min_length"], kw["max_length"])
  return procedural.Generator(
      sample=sample, example=procedural.example_from(sample),
      num_classes=len(tc.VOCAB), epoch_size=EPOCH_SIZE)

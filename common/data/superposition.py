"""Vectors for sparse dictionary learning: toy superposition, activation rows.

* `toy_superposition`: `n` sparse ground-truth features in `d < n`
  dimensions (the toy model of superposition used to test sparse
  autoencoders: Sharkey et al. 2022, "Taking features out of superposition
  with sparse autoencoders"). The dictionary `D [n, d]` has random unit
  rows, fixed by `dict_seed` (the same for every run seed); each example
  switches each feature on independently with probability `p_active` and
  gives it a magnitude uniform in `[0, max_magnitude]`:
  `x = c @ D + noise_std * N(0, I)`, `c [b, n]`. Batches are
  `{"x": [b, d], "codes": [b, n]}`. `true_dictionary(config)` rebuilds `D`
  for ground-truth recovery metrics.
* `activation_rows`: rows of a float array `[N, d]` saved with `np.save`
  (e.g. a language model's residual-stream activations), read from
  `config.data.data_dir / path`; train batches are rows drawn uniformly
  from the first `1 - eval_fraction` of the rows, held-out batches from the
  rest. Batches are `{"x": [b, d]}`. The array is a constant of the step
  (it lives on device), so keep it to a few hundred MB.

Settings in `config.data.kwargs`; both draw every batch from the key alone.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from common import config as config_lib
from common.data import procedural

TOY_DEFAULTS = dict(num_features=512, dim=64, p_active=0.015,
                    max_magnitude=1.0, noise_std=0.0, dict_seed=0,
                    num_eval=8192)
TOY_RULES = {
    "num_features": config_lib.at_least(1, integer=True),
    "dim": config_lib.at_least(1, integer=True),
    "p_active": config_lib.Rule("a number in (0, 1]",
                                 lambda v: 0.0 < v <= 1.0),
    "max_magnitude": config_lib.greater_than(0.0),
    "noise_std": config_lib.at_least(0.0),
    "dict_seed": config_lib.at_least(0, integer=True),
    "num_eval": config_lib.at_least(1, integer=True),
}


def make_dictionary(num_features: int, dim: int, dict_seed: int
                    ) -> jax.Array:
  """`[n, d]` random unit-norm rows, a function of `dict_seed` only."""
  rows = jax.random.normal(jax.random.PRNGKey(dict_seed),
                           (num_features, dim))
  return rows / jnp.linalg.norm(rows, axis=-1, keepdims=True)


def toy_settings(config: Any) -> dict[str, Any]:
  return procedural.settings(config, TOY_DEFAULTS, TOY_RULES)


def true_dictionary(config: Any) -> jax.Array:
  """The ground-truth dictionary `[n, d]` of a `toy_superposition` config."""
  kw = toy_settings(config)
  return make_dictionary(int(kw["num_features"]), int(kw["dim"]),
                         int(kw["dict_seed"]))


@procedural.register_generator("toy_superposition")
def toy_superposition(config: Any) -> procedural.Generator:
  kw = toy_settings(config)
  dictionary = make_dictionary(int(kw["num_features"]), int(kw["dim"]),
                               int(kw["dict_seed"]))
  n = dictionary.shape[0]
  p, top, noise = kw["p_active"], kw["max_magnitude"], kw["noise_std"]

  def sample(rng, b):
    k_on, k_mag, k_noise = jax.random.split(rng, 3)
    on = jax.random.bernoulli(k_on, p, (b, n))
    codes = jnp.where(on, jax.random.uniform(k_mag, (b, n), maxval=top), 0.0)
    x = codes @ dictionary
    if noise > 0:
      x = x + noise * jax.random.normal(k_noise, x.shape)
    return {"x": x, "codes": codes}

  return procedural.Generator(
      sample=sample, example=procedural.example_from(sample), num_classes=0,
      epoch_size=8192, eval_examples=int(kw["num_eval"]))


ROWS_DEFAULTS = dict(path="activations.npy", eval_fraction=0.1,
                     num_eval=8192)


def load_rows(config: Any) -> np.ndarray:
  """The float32 `[N, d]` array of an `activation_rows` config."""
  kw = procedural.settings(config, ROWS_DEFAULTS, {
      "eval_fraction": config_lib.Rule("a number in (0, 1)",
                                       lambda v: 0.0 < v < 1.0)})
  path = os.path.join(config.data.data_dir or ".", kw["path"])
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"activation_rows: {path!r} does not exist; set config.data.data_dir "
        "and config.data.kwargs.path to an .npy array [N, d] of activations")
  rows = np.load(path).astype(np.float32)
  if rows.ndim != 2 or len(rows) < 2:
    raise ValueError(f"activation_rows: {path!r} has shape {rows.shape}; "
                     "expected [N >= 2, d]")
  return rows


@procedural.register_generator("activation_rows")
def activation_rows(config: Any) -> procedural.Generator:
  kw = procedural.settings(config, ROWS_DEFAULTS)
  rows = jnp.asarray(load_rows(config))
  n_eval = max(1, int(round(len(rows) * kw["eval_fraction"])))
  n_train = len(rows) - n_eval

  def sample(rng, b):
    return {"x": rows[jax.random.randint(rng, (b,), 0, n_train)]}

  def eval_sample(rng, b):
    return {"x": rows[n_train + jax.random.randint(rng, (b,), 0, n_eval)]}

  return procedural.Generator(
      sample=sample, example=procedural.example_from(sample), num_classes=0,
      epoch_size=n_train, eval_sample=eval_sample,
      eval_examples=min(int(kw["num_eval"]), n_eval))

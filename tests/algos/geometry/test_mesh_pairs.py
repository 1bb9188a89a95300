"""The mesh_pairs generator: distinct ordered pairs, layout, test data."""

from __future__ import annotations

import jax
import numpy as np

from algos.geometry import mesh_pairs
from common import config as config_lib
from common.data import procedural


def _config():
  return config_lib.apply_overrides(
      config_lib.load_config("experiments/eot_fmaps/config.py"), {
          "meshes.num_train_shapes": 3, "meshes.num_test_shapes": 3,
          "meshes.num_evecs": 8, "meshes.wks_count": 6,
          "meshes.max_test_pairs": 2})


def test_pairs_are_distinct_shapes_in_batch_layout():
  config = _config()
  gen = procedural.make(config)
  data = mesh_pairs.load(config)
  batch = jax.jit(gen.sample, static_argnums=1)(jax.random.PRNGKey(0), 64)
  shapes = batch["shapes"]
  n = data.train["evecs"].shape[1]
  assert shapes["descriptors"].shape == (64, 2, n, 6)
  assert shapes["evecs_trans"].shape == (64, 2, 8, n)
  # Recover each side's shape index from its eigenvalues.
  idx = [np.argmin(np.abs(np.asarray(shapes["evals"][:, side, None])
                          - data.train["evals"][None]).sum(-1), axis=1)
         for side in (0, 1)]
  assert np.all(idx[0] != idx[1])                       # never x == y
  assert len(set(zip(idx[0], idx[1]))) == 6              # all ordered pairs
  again = gen.sample(jax.random.PRNGKey(0), 64)          # a function of key
  np.testing.assert_array_equal(again["shapes"]["evals"], shapes["evals"])
  assert gen.example["shapes"]["evals"].shape == (1, 2, 8)


def test_test_data_follows_the_seed():
  config = _config()
  data = mesh_pairs.load(config)
  assert data.test_pairs == ((0, 1), (0, 2))
  t, n = data.test_corr.shape[0], data.test_geodesics.shape[1]
  assert t == 3 and data.test_geodesics.shape == (3, n, n)
  # corr rows are permutations (every template vertex lands somewhere).
  assert all(sorted(c) == list(range(n)) for c in data.test_corr)
  other = mesh_pairs.load(config_lib.apply_overrides(config, {"seed": 1}))
  assert not np.allclose(other.test["evals"], data.test["evals"])

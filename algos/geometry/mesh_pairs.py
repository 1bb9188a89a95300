"""Shape-correspondence pairs as a procedural source ("mesh_pairs").

It lives with the mesh operators it needs (`algos/geometry`), above
`common/data` in the layering; the registry finds it by scanning `algos`.

Per run (seed), `common.data.meshes_synthetic` makes a collection of
deformed, vertex-permuted copies of one random blob; the first
`meshes.num_train_shapes` are the training shapes, the rest the test
shapes. Each shape becomes its spectral data (host numpy, once per run):
the Laplace-Beltrami eigenbasis `evals [k]`, `evecs [n, k]`,
`evecs_trans = evecs^T M [k, n]` and WKS `descriptors [n, c]`.

The generator draws a batch of ordered training pairs (x != y) on device
from the step's key; a batch is `{"shapes": {key: [b, 2, ...]}}` with
index 0 = x and 1 = y along axis 1 (the model input is that dict,
`data.input_key = "shapes"`). Test pairs (the first
`meshes.max_test_pairs` combinations of test shapes), their geodesic
distances and ground-truth correspondences are read by the evaluator from
`load(config)`.

Config section `meshes`: num_train_shapes, num_test_shapes, mesh_level,
deform_strength, data_seed (+ the run's seed), num_evecs, wks_count,
max_test_pairs. All shapes of a synthetic collection have the same vertex
count, so they stack; the benchmarks' remeshed shapes do not (padding with
vertex masks would be needed).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from algos.geometry import laplace_beltrami as lb
from common.data import meshes_synthetic
from common.data import procedural

SPECTRAL_KEYS = ("descriptors", "evals", "evecs", "evecs_trans")


@dataclasses.dataclass(frozen=True)
class MeshPairData:
  """Host arrays of one run's shapes (float32, stacked over shapes).

  Attributes:
    train, test: `{key: [S, ...]}` spectral data per shape (SPECTRAL_KEYS).
    test_geodesics: `[T, n, n]` area-normalised geodesic distances.
    test_corr: `[T, n_template]` vertex of each test shape per template
      vertex.
    test_pairs: `(a, b)` test-shape indices of the evaluated pairs.
  """
  train: dict[str, np.ndarray]
  test: dict[str, np.ndarray]
  test_geodesics: np.ndarray
  test_corr: np.ndarray
  test_pairs: tuple[tuple[int, int], ...]

  def pair(self, split: str, a: int, b: int) -> dict[str, np.ndarray]:
    """`{key: [2, ...]}` of the pair (x = shape a, y = shape b)."""
    data = self.train if split == "train" else self.test
    return {k: np.stack([v[a], v[b]]) for k, v in data.items()}


def spectral(verts: np.ndarray, faces: np.ndarray, num_evecs: int,
             wks_count: int) -> dict[str, np.ndarray]:
  """One shape's eigenbasis and WKS descriptors (float32)."""
  basis = lb.laplacian_eigenbasis(verts, faces, num_evecs)
  wks = lb.wave_kernel_signature(basis["evals"], basis["evecs"],
                                 basis["mass"], wks_count)
  return {"descriptors": wks.astype(np.float32),
          **{k: basis[k].astype(np.float32)
             for k in ("evals", "evecs", "evecs_trans")}}


@functools.lru_cache(maxsize=8)
def _load(num_train: int, num_test: int, level: int, strength: float,
          seed: int, num_evecs: int, wks_count: int,
          max_test_pairs: int) -> MeshPairData:
  coll = meshes_synthetic.make_collection(num_train + num_test, seed, level,
                                          strength)
  shapes = [spectral(v, f, num_evecs, wks_count)
            for v, f in zip(coll.verts, coll.faces)]
  stack = lambda idx: {k: np.stack([shapes[i][k] for i in idx])
                       for k in SPECTRAL_KEYS}
  test_idx = range(num_train, num_train + num_test)
  geo = np.stack([lb.geodesic_distances(coll.verts[i], coll.faces[i])
                  for i in test_idx]).astype(np.float32)
  pairs = tuple(itertools.combinations(range(num_test), 2))[:max_test_pairs]
  return MeshPairData(train=stack(range(num_train)), test=stack(test_idx),
                      test_geodesics=geo,
                      test_corr=np.stack([coll.corr[i] for i in test_idx]),
                      test_pairs=pairs)


def load(config: Any) -> MeshPairData:
  """The shapes of `config`'s run (cached per settings and seed)."""
  m = config.meshes
  return _load(m.num_train_shapes, m.num_test_shapes, m.mesh_level,
               float(m.deform_strength), m.data_seed + config.seed,
               m.num_evecs, m.wks_count, m.max_test_pairs)


def sample_pairs(train: dict[str, jax.Array], rng: jax.Array,
                 batch_size: int) -> dict[str, dict[str, jax.Array]]:
  """`batch_size` ordered pairs of distinct shapes from `{key: [S, ...]}`."""
  num = train["evals"].shape[0]
  k_x, k_y = jax.random.split(rng)
  i = jax.random.randint(k_x, (batch_size,), 0, num)
  j = (i + 1 + jax.random.randint(k_y, (batch_size,), 0, num - 1)) % num
  return {"shapes": {k: jnp.stack([v[i], v[j]], axis=1)
                     for k, v in train.items()}}


@procedural.register_generator("mesh_pairs")
def make(config: Any) -> procedural.Generator:
  """Training pairs of the run's synthetic collection, drawn on device."""
  m = config.meshes
  if m.num_train_shapes < 2 or m.num_test_shapes < 2:
    raise ValueError(f"meshes.num_train_shapes={m.num_train_shapes} and "
                     f"meshes.num_test_shapes={m.num_test_shapes}: need >= 2 "
                     "of each (pairs of distinct shapes)")
  train = {k: jnp.asarray(v) for k, v in load(config).train.items()}
  sample = functools.partial(sample_pairs, train)
  num = m.num_train_shapes
  # An "epoch" is every ordered pair once (pairs are drawn with
  # replacement; epochs only name schedule and eval points).
  return procedural.Generator(
      sample=sample, example=procedural.example_from(sample),
      epoch_size=max(num * (num - 1), config.train.batch_size))

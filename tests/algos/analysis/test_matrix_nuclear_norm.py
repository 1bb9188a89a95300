"""MNN and Matrix Entropy: identities, masking, official parity."""

import importlib.util
import os
import sys
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from algos.analysis import matrix_nuclear_norm as mnn


def _rand(seed, shape):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_l12_equals_nuclear_norm_for_orthogonal_columns():
  # ||X||_* = sum of column norms when the columns are orthogonal, the
  # case where the L_{1,2} approximation is exact.
  q, _ = np.linalg.qr(_rand(0, (12, 5)))
  x = q * np.array([3.0, 2.0, 1.5, 0.5, 0.1], np.float32)
  exact = np.linalg.svd(x, compute_uv=False).sum()
  np.testing.assert_allclose(mnn.nuclear_norm_l12(jnp.asarray(x)), exact,
                             rtol=1e-5)


def test_rows_unit_norm_and_padding_is_ignored():
  r = _rand(1, (10, 6))
  z = np.asarray(mnn.normalize_rows(jnp.asarray(r)))
  np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, rtol=1e-5)
  padded = np.concatenate([r, _rand(2, (5, 6)) * 100])
  mask = np.arange(15) < 10
  full = jax.jit(lambda a, m: jnp.stack([mnn.mnn_score(a, m),
                                         mnn.matrix_entropy(a, m)]))
  np.testing.assert_allclose(full(padded, mask),
                             full(r, np.ones(10, bool)), rtol=1e-5)


def test_entropy_zero_for_rank_one_and_eigh_equals_svd():
  v = _rand(3, (1, 8))
  rank1 = _rand(4, (20, 1)) * v
  assert abs(float(mnn.matrix_entropy(jnp.asarray(rank1)))) < 1e-5
  r = jnp.asarray(_rand(5, (30, 8)))
  np.testing.assert_allclose(mnn.matrix_entropy(r, method="eigh"),
                             mnn.matrix_entropy(r, method="svd"), rtol=1e-4)
  assert 0.0 < float(mnn.matrix_entropy(r)) <= 1.0


def test_bad_num_terms_is_a_clear_error():
  with pytest.raises(ValueError, match="num_terms"):
    mnn.nuclear_norm_l12(jnp.ones((4, 3)), num_terms=5)


_OFFICIAL = os.environ.get("REGJAX_OFFICIAL_MNN_DIR")


def _load(path, name):
  import transformers  # pylint: disable=g-import-not-at-top,unused-import
  # Before the stubs: transformers probes which packages exist.
  stubs = {m: mock.MagicMock() for m in ("jsonlines", "datasets", "tqdm")
           if importlib.util.find_spec(m) is None}
  sys.modules.update(stubs)
  try:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
  finally:
    for m in stubs:
      sys.modules.pop(m, None)
  return module


@pytest.mark.skipif(not _OFFICIAL, reason="set REGJAX_OFFICIAL_MNN_DIR to a "
                    "checkout of MLGroupJLU/MatrixNuclearNorm")
def test_parity_with_official_mnn_and_entropy():
  torch = pytest.importorskip("torch")
  off = _load(os.path.join(_OFFICIAL, "code", "MNN.py"), "official_mnn")
  ent = _load(os.path.join(_OFFICIAL, "code", "compute_entropy_time.py"),
              "official_entropy")
  r = _rand(6, (40, 16)).astype(np.float64)
  want = off.normalize_and_compute_matrix_nuclear_norm(torch.tensor(r)) / 40
  got = mnn.mnn_score(jnp.asarray(r, jnp.float32))
  np.testing.assert_allclose(float(got), want, rtol=1e-5)
  want_e = ent.cal_entropy(ent.cal_cov(ent.normalize(torch.tensor(r))))
  np.testing.assert_allclose(float(mnn.matrix_entropy(jnp.asarray(r))),
                             want_e, rtol=1e-4)

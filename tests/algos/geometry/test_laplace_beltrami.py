"""Laplace-Beltrami, descriptors, geodesics and the mesh data (I/O, generator)."""

from __future__ import annotations

import numpy as np
import pytest

from algos.geometry import laplace_beltrami as lb
from common.data import meshes
from common.data import meshes_synthetic as ms


@pytest.fixture(scope="module")
def sphere():
  return ms.icosphere(3)


def test_sphere_spectrum_is_l_l_plus_1_with_multiplicity(sphere):
  verts, faces = sphere
  basis = lb.laplacian_eigenbasis(verts, faces, 16)
  # Unit sphere: eigenvalue l(l+1) with multiplicity 2l+1 (0, 2x3, 6x5, 12x7).
  expected = np.repeat([0.0, 2.0, 6.0, 12.0], [1, 3, 5, 7])
  np.testing.assert_allclose(basis["evals"], expected, rtol=0.03, atol=1e-6)


def test_eigenbasis_is_mass_orthonormal_and_trans_inverts(sphere):
  verts, faces = sphere
  basis = lb.laplacian_eigenbasis(verts, faces, 12)
  phi, mass = basis["evecs"], basis["mass"]
  np.testing.assert_allclose(phi.T @ (mass[:, None] * phi), np.eye(12),
                             atol=1e-8)
  np.testing.assert_allclose(basis["evecs_trans"] @ phi, np.eye(12),
                             atol=1e-8)
  assert np.isclose(mass.sum(), lb.total_area(verts, faces))


def test_flat_grid_neumann_eigenvalues():
  # Unit square, free boundary: eigenvalues pi^2 (m^2 + n^2).
  n = 25
  xs, ys = np.meshgrid(np.linspace(0, 1, n), np.linspace(0, 1, n))
  verts = np.c_[xs.ravel(), ys.ravel(), np.zeros(n * n)]
  idx = np.arange(n * n).reshape(n, n)
  a, b, c, d = (idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(),
                idx[1:, :-1].ravel(), idx[1:, 1:].ravel())
  faces = np.r_[np.c_[a, b, d], np.c_[a, d, c]]
  evals = lb.laplacian_eigenbasis(verts, faces, 6)["evals"]
  expected = np.pi ** 2 * np.array([0, 1, 1, 2, 4, 4])
  np.testing.assert_allclose(evals, expected, rtol=0.03, atol=1e-6)


def test_laplacian_rows_sum_to_zero_and_psd(sphere):
  lap, _ = lb.cotangent_laplacian(*sphere)
  np.testing.assert_allclose(np.asarray(lap.sum(axis=1)).ravel(), 0,
                             atol=1e-10)
  np.testing.assert_allclose((lap - lap.T).toarray(), 0, atol=1e-12)


def test_descriptors_are_intrinsic(sphere):
  """WKS/HKS do not change under a rigid motion and follow a permutation."""
  verts, faces = ms.blob_template(np.random.default_rng(0), level=2)
  b = lb.laplacian_eigenbasis(verts, faces, 12)
  wks = lb.wave_kernel_signature(b["evals"], b["evecs"], b["mass"], 16)
  hks = lb.heat_kernel_signature(b["evals"], b["evecs"], 8)
  rot = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))[0]
  perm = np.random.default_rng(2).permutation(len(verts))
  inv = np.argsort(perm)
  b2 = lb.laplacian_eigenbasis(verts[perm] @ rot.T + 3.0, inv[faces], 12)
  wks2 = lb.wave_kernel_signature(b2["evals"], b2["evecs"], b2["mass"], 16)
  hks2 = lb.heat_kernel_signature(b2["evals"], b2["evecs"], 8)
  np.testing.assert_allclose(wks2, wks[perm], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(hks2, hks[perm], rtol=1e-5, atol=1e-6)
  assert np.allclose(np.einsum("np,n,np->p", wks, b["mass"], wks), 1.0)


def test_geodesics_on_sphere_close_to_great_circle(sphere):
  verts, faces = sphere
  d = lb.geodesic_distances(verts, faces, normalize_by_area=False,
                            sources=np.array([0]))[0]
  exact = np.arccos(np.clip(verts @ verts[0], -1, 1))
  # Chords are shorter than arcs (slightly below) and edge paths zig-zag
  # (above): graph geodesics overestimate by ~8% on average at this level.
  far = exact > 0.3
  rel = d[far] / exact[far] - 1
  assert rel.min() > -0.01 and np.mean(rel) < 0.1 and rel.max() < 0.25


@pytest.mark.parametrize("ext", [".off", ".obj"])
def test_mesh_io_round_trip(tmp_path, ext):
  coll = ms.make_collection(2, seed=3, level=1)
  ms.write_collection(str(tmp_path), coll, ext=ext)
  back = ms.read_collection(str(tmp_path), ext=ext)
  for a, b in zip(coll.verts + coll.faces + coll.corr,
                  back.verts + back.faces + back.corr):
    np.testing.assert_allclose(a, b, rtol=1e-8)


def test_generator_correspondence_is_a_permutation_not_identity():
  coll = ms.make_collection(2, seed=0, level=2)
  v0, v1 = coll.verts
  c0, c1 = coll.corr
  assert sorted(c0) == list(range(len(v0))) and not np.all(c0 == c1)
  # Near-isometric: geodesic distances between corresponding template points
  # change little (edge lengths do change: the vertices are re-sampled).
  t = np.arange(0, len(v0), 7)
  g0 = lb.geodesic_distances(v0, coll.faces[0], sources=c0[t])[:, c0[t]]
  g1 = lb.geodesic_distances(v1, coll.faces[1], sources=c1[t])[:, c1[t]]
  off = g0 > 0.1
  assert np.median(np.abs(g1[off] / g0[off] - 1)) < 0.15


def test_benchmark_loader_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="off"):
    meshes.load_benchmark(str(tmp_path), "FAUST_r")
  with pytest.raises(ValueError, match="allowed"):
    meshes.load_benchmark(str(tmp_path), "FAUST")
  ms.write_collection(str(tmp_path), ms.make_collection(3, 0, level=1))
  with pytest.raises(ValueError, match="100 shapes"):
    meshes.load_benchmark(str(tmp_path), "FAUST_r")
  coll = meshes.load_benchmark(str(tmp_path), "SHREC19_r")
  assert len(coll.verts) == 3


def test_bad_mesh_input_is_a_clear_error():
  with pytest.raises(ValueError, match="faces index"):
    lb.cotangent_laplacian(np.zeros((3, 3)), np.array([[0, 1, 5]]))

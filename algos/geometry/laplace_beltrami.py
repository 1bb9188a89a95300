"""Triangle meshes: cotangent Laplace-Beltrami, eigenbasis, descriptors, geodesics.

Offline (NumPy/SciPy) preprocessing for spectral shape matching, as in
DiffusionNet / ULRSSM / EOT-Correspondence (Le et al., CVPR 2024; official
code Tungthanhlee/EOT-Correspondence, `utils/geometry_util.py`), written from
the standard definitions:

* `cotangent_laplacian`: the stiffness matrix `L = sum_edges 1/2 (cot a + cot
  b)` (positive semi-definite, rows sum to 0) and the lumped (barycentric)
  mass matrix `M_ii = area of the faces at i / 3`;
* `laplacian_eigenbasis`: the generalized eigenproblem `L phi = lambda M phi`
  by `scipy.sparse.linalg.eigsh` in shift-invert mode, so `phi^T M phi = I`;
  `evecs_trans = phi^T M` is the projection onto the basis (the official
  code's `evecs_trans`);
* `heat_kernel_signature` / `wave_kernel_signature`: HKS (auto-scaled time
  log-spaced in [1e-2, 1] as in the official `compute_hks_autoscale`) and the
  auto-scaled WKS the official code feeds to DiffusionNet (energies in
  [log l_1 + 2 sigma, log l_K - 2 sigma], sigma = 7 (e_max - e_min) / n,
  scaled, then mass-normalised per descriptor);
* `geodesic_distances`: Dijkstra on the edge graph (`scipy.sparse.csgraph`),
  an upper bound on the true geodesic that converges with resolution; the
  benchmarks normalise it by `sqrt(total area)`.

Nothing here comes from ott-jax (it has no mesh operators).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph
from scipy.sparse import linalg as sla


def _check_mesh(verts: np.ndarray, faces: np.ndarray) -> None:
  if verts.ndim != 2 or verts.shape[1] != 3:
    raise ValueError(f"verts must be [n, 3]; got {verts.shape}")
  if faces.ndim != 2 or faces.shape[1] != 3:
    raise ValueError(f"faces must be triangles [f, 3]; got {faces.shape}")
  if faces.size and (faces.min() < 0 or faces.max() >= len(verts)):
    raise ValueError(f"faces index vertices 0..{len(verts) - 1}; got range "
                     f"{faces.min()}..{faces.max()}")


def face_areas(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
  """Triangle areas `[f]`."""
  e1 = verts[faces[:, 1]] - verts[faces[:, 0]]
  e2 = verts[faces[:, 2]] - verts[faces[:, 0]]
  return 0.5 * np.linalg.norm(np.cross(e1, e2), axis=1)


def total_area(verts: np.ndarray, faces: np.ndarray) -> float:
  return float(face_areas(verts, faces).sum())


def cotangent_laplacian(verts: np.ndarray, faces: np.ndarray
                        ) -> tuple[sp.csr_matrix, np.ndarray]:
  """Cotangent stiffness `L` `[n, n]` (PSD) and lumped mass `[n]`.

  Args:
    verts: `[n, 3]` float vertex positions.
    faces: `[f, 3]` int triangles.

  Returns:
    `(L, mass)` with `L` sparse symmetric, rows summing to 0, and `mass` the
    barycentric vertex areas (sum = total area).
  """
  verts = np.asarray(verts, np.float64)
  faces = np.asarray(faces, np.int64)
  _check_mesh(verts, faces)
  n = len(verts)
  rows, cols, vals = [], [], []
  for k in range(3):
    # The angle at corner k is opposite the edge (k+1, k+2).
    i, j, o = faces[:, (k + 1) % 3], faces[:, (k + 2) % 3], faces[:, k]
    u, v = verts[i] - verts[o], verts[j] - verts[o]
    cross = np.linalg.norm(np.cross(u, v), axis=1)
    cot = np.einsum("ij,ij->i", u, v) / np.maximum(cross, 1e-12)
    rows += [i, j]
    cols += [j, i]
    vals += [0.5 * cot, 0.5 * cot]
  off = sp.coo_matrix((-np.concatenate(vals),
                       (np.concatenate(rows), np.concatenate(cols))),
                      shape=(n, n)).tocsr()
  lap = off - sp.diags(np.asarray(off.sum(axis=1)).ravel())
  area = face_areas(verts, faces)
  mass = np.zeros(n)
  for k in range(3):
    np.add.at(mass, faces[:, k], area / 3.0)
  return lap.tocsr(), mass


def laplacian_eigenbasis(verts: np.ndarray, faces: np.ndarray, k: int
                         ) -> dict[str, np.ndarray]:
  """The first `k` Laplace-Beltrami eigenpairs of a mesh.

  Returns:
    dict with `evals` `[k]` ascending (first ~0), `evecs` `[n, k]`
    (M-orthonormal), `evecs_trans` `[k, n]` = `evecs^T M`, `mass` `[n]`.
  """
  lap, mass = cotangent_laplacian(verts, faces)
  n = lap.shape[0]
  if not 1 <= k < n - 1:
    raise ValueError(f"k must be in [1, {n - 2}] for a mesh with {n} "
                     f"vertices; got {k}")
  m = sp.diags(mass)
  # Shift-invert around a small negative sigma: L - sigma M is then positive
  # definite, and eigsh returns the eigenvalues nearest 0 (the smallest).
  evals, evecs = sla.eigsh(lap, k=k, M=m, sigma=-1e-8, which="LM",
                           v0=np.ones(n))
  order = np.argsort(evals)
  evals, evecs = np.clip(evals[order], 0.0, None), evecs[:, order]
  # eigsh normalises to phi^T M phi = I already; fix the sign for
  # determinism (largest-magnitude entry positive).
  signs = np.sign(evecs[np.argmax(np.abs(evecs), axis=0), np.arange(k)])
  evecs = evecs * np.where(signs == 0, 1.0, signs)
  return {"evals": evals, "evecs": evecs, "evecs_trans": (evecs * mass[:, None]).T,
          "mass": mass}


def heat_kernel_signature(evals: np.ndarray, evecs: np.ndarray,
                          count: int = 16) -> np.ndarray:
  """HKS `[n, count]` at times log-spaced in [1e-2, 1] (official autoscale)."""
  times = np.logspace(-2.0, 0.0, count)
  return (evecs ** 2) @ np.exp(-np.outer(evals, times))


def wave_kernel_signature(evals: np.ndarray, evecs: np.ndarray,
                          mass: np.ndarray, count: int = 128) -> np.ndarray:
  """Auto-scaled WKS `[n, count]`, each column of unit mass-norm.

  Args:
    evals: `[k]` ascending eigenvalues (the ~0 ones are skipped).
    evecs: `[n, k]` eigenvectors.
    mass: `[n]` lumped mass.
    count: number of energies.
  """
  evals = np.abs(np.asarray(evals, np.float64))
  keep = evals > 1e-5
  if keep.sum() < 2:
    raise ValueError("WKS needs at least two non-zero eigenvalues")
  ev, phi = evals[keep], evecs[:, keep]
  e_min, e_max = np.log(ev[0]), np.log(ev[-1])
  sigma = 7.0 * (e_max - e_min) / count
  energies = np.linspace(e_min + 2 * sigma, e_max - 2 * sigma, count)
  coefs = np.exp(-(energies[:, None] - np.log(ev)[None, :]) ** 2
                 / (2 * sigma ** 2))                         # [count, k]
  wks = (phi ** 2) @ coefs.T / coefs.sum(axis=1)[None, :]    # [n, count]
  norms = np.sqrt(np.einsum("np,n,np->p", wks, mass, wks))
  return wks / np.maximum(norms, 1e-12)[None, :]


def edge_graph(verts: np.ndarray, faces: np.ndarray) -> sp.csr_matrix:
  """Sparse symmetric `[n, n]` graph of mesh edges weighted by length."""
  faces = np.asarray(faces, np.int64)
  i = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2]])
  j = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0]])
  w = np.linalg.norm(verts[i] - verts[j], axis=1)
  g = sp.coo_matrix((w, (i, j)), shape=(len(verts),) * 2).tocsr()
  g = g.maximum(g.T)   # each edge once, both directions
  return g.tocsr()


def geodesic_distances(verts: np.ndarray, faces: np.ndarray,
                       normalize_by_area: bool = True,
                       sources: np.ndarray | None = None) -> np.ndarray:
  """Dijkstra distances on the edge graph, `[len(sources) or n, n]`.

  Divided by `sqrt(total area)` when `normalize_by_area` (the benchmarks'
  convention, so errors are comparable across shapes).
  """
  verts = np.asarray(verts, np.float64)
  _check_mesh(verts, np.asarray(faces))
  dist = csgraph.dijkstra(edge_graph(verts, faces), directed=False,
                          indices=sources)
  if not np.all(np.isfinite(dist)):
    raise ValueError("the mesh is not connected: some geodesic distances are "
                     "infinite")
  if normalize_by_area:
    dist = dist / np.sqrt(total_area(verts, faces))
  return dist

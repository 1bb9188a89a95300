"""Procedural shape-matching data: a blobby template under non-rigid,
near-isometric deformations, with known ground-truth correspondence.

Each collection starts from one template: an icosphere (`level` 3: 642
vertices) whose radius is modulated by a few random smooth bumps and which is
stretched along x, so it has no intrinsic symmetry to confuse the matcher.
Every shape of the collection is the template after

* a bend (the x axis is wrapped on a circle of curvature `kappa`: isometric
  on the mid-surface, near-isometric for the thin blob),
* a twist about x (angle `tau * x`),
* a few smooth Gaussian displacement bumps,
* a tangential jitter of the vertices (a different sampling of the same
  surface, in the spirit of the remeshed `_r` benchmarks; the connectivity
  stays that of the template),
* a random rotation, and
* a random permutation of the vertex order (so identity is never the answer).

`corr[i][t]` is the vertex of shape i that template vertex t became: the
same convention as the benchmarks' `.vts` files (0-based here). Collections
are written in the benchmark layout (`off/`, `corres/`) by `write_collection`
and read back by `read_collection`.
"""

from __future__ import annotations

import glob
import os

import numpy as np

from common.data import meshes


def icosphere(level: int) -> tuple[np.ndarray, np.ndarray]:
  """Unit icosphere: `verts [10 * 4**level + 2, 3]`, `faces [20 * 4**level, 3]`."""
  t = (1.0 + 5 ** 0.5) / 2
  verts = [(-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0), (0, -1, t),
           (0, 1, t), (0, -1, -t), (0, 1, -t), (t, 0, -1), (t, 0, 1),
           (-t, 0, -1), (-t, 0, 1)]
  faces = [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11),
           (1, 5, 9), (5, 11, 4), (11, 10, 2), (10, 7, 6), (7, 1, 8),
           (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9),
           (4, 9, 5), (2, 4, 11), (6, 2, 10), (8, 6, 7), (9, 8, 1)]
  verts = [np.asarray(v, np.float64) / np.linalg.norm(v) for v in verts]
  for _ in range(level):
    cache, new_faces = {}, []

    def midpoint(a, b):
      key = (min(a, b), max(a, b))
      if key not in cache:
        m = verts[a] + verts[b]
        verts.append(m / np.linalg.norm(m))
        cache[key] = len(verts) - 1
      return cache[key]

    for a, b, c in faces:
      ab, bc, ca = midpoint(a, b), midpoint(b, c), midpoint(c, a)
      new_faces += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
    faces = new_faces
  return np.asarray(verts), np.asarray(faces, np.int64)


def _bumps(points: np.ndarray, centers: np.ndarray, widths: np.ndarray,
           amps: np.ndarray) -> np.ndarray:
  """Sum of Gaussian bumps at `points [n, 3]`: `[n]` (or `[n, 3]` amps)."""
  d2 = ((points[:, None, :] - centers[None]) ** 2).sum(-1)
  return np.exp(-d2 / (2 * widths[None] ** 2)) @ amps


def blob_template(rng: np.random.Generator, level: int = 3
                  ) -> tuple[np.ndarray, np.ndarray]:
  """An asymmetric blob: modulated, x-stretched icosphere."""
  verts, faces = icosphere(level)
  k = 6
  centers = rng.normal(size=(k, 3))
  centers /= np.linalg.norm(centers, axis=1, keepdims=True)
  radius = 1.0 + _bumps(verts, centers, rng.uniform(0.3, 0.6, k),
                        rng.uniform(0.15, 0.45, k))
  return verts * radius[:, None] * np.array([1.8, 1.0, 0.7]), faces


def _rotation(rng: np.random.Generator) -> np.ndarray:
  q, r = np.linalg.qr(rng.normal(size=(3, 3)))
  q = q * np.sign(np.diag(r))
  return q if np.linalg.det(q) > 0 else -q


def _vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
  fn = np.cross(verts[faces[:, 1]] - verts[faces[:, 0]],
                verts[faces[:, 2]] - verts[faces[:, 0]])
  vn = np.zeros_like(verts)
  for k in range(3):
    np.add.at(vn, faces[:, k], fn)
  return vn / np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-12)


def deform(verts: np.ndarray, faces: np.ndarray, rng: np.random.Generator,
           strength: float = 1.0) -> np.ndarray:
  """One random near-isometric deformation of `verts [n, 3]` (same order)."""
  x, y, z = verts.T
  # Bend: arc length along x kept, the x axis wrapped on a circle 1/kappa.
  kappa = strength * rng.uniform(-0.7, 0.7)
  if abs(kappa) > 1e-3:
    r = 1.0 / kappa - z
    x, z = np.sin(kappa * x) * r, 1.0 / kappa - np.cos(kappa * x) * r
  # Twist about the x axis.
  angle = strength * rng.uniform(-0.6, 0.6) * x / 1.8
  y, z = np.cos(angle) * y - np.sin(angle) * z, np.sin(angle) * y + np.cos(
      angle) * z
  out = np.stack([x, y, z], axis=1)
  # Smooth local displacements.
  k = 4
  centers = verts[rng.choice(len(verts), k, replace=False)]
  out = out + _bumps(verts, centers, np.full(k, 0.5),
                     strength * rng.normal(scale=0.08, size=(k, 3)))
  # Tangential jitter: another sampling of the same surface.
  edge = np.linalg.norm(verts[faces[:, 0]] - verts[faces[:, 1]], axis=1).mean()
  normals = _vertex_normals(out, faces)
  jitter = rng.normal(scale=0.15 * edge, size=out.shape)
  jitter -= (jitter * normals).sum(1, keepdims=True) * normals
  return (out + jitter) @ _rotation(rng).T


def make_collection(num_shapes: int, seed: int, level: int = 3,
                    strength: float = 1.0) -> meshes.ShapeCollection:
  """`num_shapes` deformed, vertex-permuted copies of one random template."""
  if num_shapes < 1 or level < 0:
    raise ValueError(f"need num_shapes >= 1 and level >= 0; got "
                     f"{num_shapes}, {level}")
  rng = np.random.default_rng(seed)
  template, faces = blob_template(rng, level)
  coll = meshes.ShapeCollection([], [], [], [])
  for i in range(num_shapes):
    verts = deform(template, faces, rng, strength)
    perm = rng.permutation(len(verts))   # new vertex j = old vertex perm[j]
    inv = np.argsort(perm)
    coll.names.append(f"blob_{i:03d}")
    coll.verts.append(verts[perm])
    coll.faces.append(inv[faces])
    coll.corr.append(inv)                # template vertex t -> new inv[t]
  return coll


def write_collection(root: str, coll: meshes.ShapeCollection,
                     ext: str = ".off") -> None:
  """Writes `<root>/off/<name><ext>` and `<root>/corres/<name>.vts` (1-based)."""
  os.makedirs(os.path.join(root, "off"), exist_ok=True)
  os.makedirs(os.path.join(root, "corres"), exist_ok=True)
  for name, v, f, c in zip(coll.names, coll.verts, coll.faces, coll.corr):
    meshes.write_mesh(os.path.join(root, "off", name + ext), v, f)
    np.savetxt(os.path.join(root, "corres", name + ".vts"), c + 1, fmt="%d")


def read_collection(root: str, ext: str = ".off") -> meshes.ShapeCollection:
  paths = sorted(glob.glob(os.path.join(root, "off", "*" + ext)))
  if not paths:
    raise FileNotFoundError(f"no *{ext} meshes under {root}/off")
  coll = meshes.ShapeCollection([], [], [], [])
  for p in paths:
    name = os.path.splitext(os.path.basename(p))[0]
    v, f = meshes.read_mesh(p)
    coll.names.append(name)
    coll.verts.append(v)
    coll.faces.append(f)
    coll.corr.append(np.loadtxt(os.path.join(root, "corres", name + ".vts"),
                                dtype=np.int64).reshape(-1) - 1)
  return coll

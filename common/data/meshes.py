"""Triangle meshes: OFF/OBJ reading and writing, and the shape-matching
benchmark layout (FAUST_r, SCAPE_r, SHREC'19_r) read from a user directory.

Benchmark layout (as in the preprocessed data of ULRSSM / EOT-Correspondence,
`datasets/shape_dataset.py`): `<root>/off/*.off` meshes and
`<root>/corres/*.vts` (1-based vertex indices into the shape of each row of a
shared template), sorted by the number in the file name. Splits of the
official code: FAUST_r 100 shapes (train 0-79, test 80-99), SCAPE_r 71 shapes
(train 0-50, test 51-70), SHREC'19_r (all test; the official pairs file
lists the pairs and is not reproduced here).
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re

import numpy as np


def _read_tokens(path: str) -> list[str]:
  with open(path, encoding="utf-8") as f:
    return [ln.split("#", 1)[0].strip() for ln in f]


def read_off(path: str) -> tuple[np.ndarray, np.ndarray]:
  """Reads an OFF file: `verts [n, 3] float64`, `faces [f, 3] int64`.

  Polygons with more than 3 corners are fan-triangulated.
  """
  lines = [ln for ln in _read_tokens(path) if ln]
  if not lines or not lines[0].startswith("OFF"):
    raise ValueError(f"{path} is not an OFF file (first line {lines[:1]})")
  head = lines[0][3:].split() or lines.pop(1).split()
  rest = lines[1:]
  try:
    nv, nf = int(head[0]), int(head[1])
    verts = np.array([[float(x) for x in rest[i].split()[:3]]
                      for i in range(nv)], np.float64)
    faces = []
    for i in range(nv, nv + nf):
      idx = [int(x) for x in rest[i].split()]
      corners = idx[1:1 + idx[0]]
      faces += [[corners[0], corners[j], corners[j + 1]]
                for j in range(1, len(corners) - 1)]
  except (IndexError, ValueError) as e:
    raise ValueError(f"{path}: malformed OFF body ({e})") from e
  return verts.reshape(-1, 3), np.array(faces, np.int64).reshape(-1, 3)


def write_off(path: str, verts: np.ndarray, faces: np.ndarray) -> None:
  with open(path, "w", encoding="utf-8") as f:
    f.write(f"OFF\n{len(verts)} {len(faces)} 0\n")
    np.savetxt(f, np.asarray(verts, np.float64), fmt="%.9g")
    np.savetxt(f, np.c_[np.full(len(faces), 3), faces], fmt="%d")


def read_obj(path: str) -> tuple[np.ndarray, np.ndarray]:
  """Reads `v` and `f` records of an OBJ file (1-based, `v/vt/vn` allowed)."""
  verts, faces = [], []
  for ln in _read_tokens(path):
    parts = ln.split()
    if not parts:
      continue
    if parts[0] == "v":
      verts.append([float(x) for x in parts[1:4]])
    elif parts[0] == "f":
      idx = [int(p.split("/")[0]) for p in parts[1:]]
      idx = [i - 1 if i > 0 else len(verts) + i for i in idx]
      faces += [[idx[0], idx[j], idx[j + 1]] for j in range(1, len(idx) - 1)]
  if not verts:
    raise ValueError(f"{path} has no vertices")
  return np.array(verts, np.float64), np.array(faces, np.int64).reshape(-1, 3)


def write_obj(path: str, verts: np.ndarray, faces: np.ndarray) -> None:
  with open(path, "w", encoding="utf-8") as f:
    np.savetxt(f, np.asarray(verts, np.float64), fmt="v %.9g %.9g %.9g")
    np.savetxt(f, np.asarray(faces) + 1, fmt="f %d %d %d")


def read_mesh(path: str) -> tuple[np.ndarray, np.ndarray]:
  ext = os.path.splitext(path)[1].lower()
  if ext == ".off":
    return read_off(path)
  if ext == ".obj":
    return read_obj(path)
  raise ValueError(f"unsupported mesh format {ext!r} ({path}); allowed: .off, "
                   f".obj")


def write_mesh(path: str, verts: np.ndarray, faces: np.ndarray) -> None:
  ext = os.path.splitext(path)[1].lower()
  if ext == ".off":
    write_off(path, verts, faces)
  elif ext == ".obj":
    write_obj(path, verts, faces)
  else:
    raise ValueError(f"unsupported mesh format {ext!r}; allowed: .off, .obj")


# ------------------------------------------------------ benchmark collections
BENCHMARKS = {
    # name: (number of shapes, test indices)
    "FAUST_r": (100, range(80, 100)),
    "SCAPE_r": (71, range(51, 71)),
    "SHREC19_r": (None, None),   # all shapes are test shapes
}


@dataclasses.dataclass
class ShapeCollection:
  """Meshes with correspondences to a shared template (`corr[i][t]` is the
  vertex of shape i matching template vertex t)."""
  names: list[str]
  verts: list[np.ndarray]
  faces: list[np.ndarray]
  corr: list[np.ndarray]


def _number_key(path: str):
  m = re.search(r"\d+(?=\.)", os.path.basename(path))
  return (int(m.group()) if m else -1, path)


def load_benchmark(root: str, name: str, split: str = "test"
                   ) -> ShapeCollection:
  """Loads FAUST_r / SCAPE_r / SHREC19_r from `root` (with off/ and corres/).

  Raises:
    FileNotFoundError: the folders or files are missing (says where and how
      they must be laid out).
    ValueError: unknown benchmark or split, or a wrong number of shapes.
  """
  if name not in BENCHMARKS:
    raise ValueError(f"unknown benchmark {name!r}; allowed: {list(BENCHMARKS)}")
  if split not in ("train", "test", "all"):
    raise ValueError(f"split must be train, test or all; got {split!r}")
  off_dir, corr_dir = os.path.join(root, "off"), os.path.join(root, "corres")
  for d, what in ((off_dir, "*.off meshes"), (corr_dir, "*.vts files")):
    if not os.path.isdir(d):
      raise FileNotFoundError(
          f"{name}: {d} does not exist. Expected the preprocessed benchmark "
          f"layout <root>/off/ ({'*.off'}) and <root>/corres/ (*.vts), e.g. "
          f"from the EOT-Correspondence / ULRSSM README; missing: {what}")
  offs = sorted(glob.glob(os.path.join(off_dir, "*.off")), key=_number_key)
  vts = sorted(glob.glob(os.path.join(corr_dir, "*.vts")), key=_number_key)
  if not offs or len(offs) != len(vts):
    raise FileNotFoundError(f"{name}: found {len(offs)} .off and {len(vts)} "
                            f".vts files under {root}; need the same, > 0")
  expected, test_idx = BENCHMARKS[name]
  if expected is not None and len(offs) != expected:
    raise ValueError(f"{name} has {expected} shapes; found {len(offs)} in "
                     f"{off_dir}")
  idx = list(range(len(offs)))
  if test_idx is not None and split != "all":
    idx = [i for i in idx if (i in test_idx) == (split == "test")]
  elif test_idx is None and split == "train":
    raise ValueError(f"{name} has no training split")
  coll = ShapeCollection([], [], [], [])
  for i in idx:
    v, f = read_off(offs[i])
    coll.names.append(os.path.splitext(os.path.basename(offs[i]))[0])
    coll.verts.append(v)
    coll.faces.append(f)
    coll.corr.append(np.loadtxt(vts[i], dtype=np.int64).reshape(-1) - 1)
  return coll

"""Vectorised numpy renderer of the `segshapes` scenes (32x32, per-pixel
labels).

Two kinds of scenes:

* **few-shot scenes** (`render_fewshot`): 1-2 textured objects of
  `NUM_OBJECT_CLASSES` = 20 classes on a textured background (label 0).
  Class `k` in 1..20 is the pair (shape `(k - 1) % 10` of
  `shapes32.render.SHAPES`, texture `FEWSHOT_TEXTURES[(k - 1) // 10]`):
  solid or finely checkered, tinted by a noisy hue cue of the shape. The
  label of a pixel is the class of the top-most object covering at least
  half of it; pixels on an object's anti-aliased rim (coverage in
  (0.2, 0.8)) are `IGNORE` (255), as PASCAL VOC marks object boundaries.
  Every image holds its first object's class (`main_class`), so episodes
  of a class can be drawn from the images that contain it.
* **volume scenes** (`render_volumes`, the source-free adaptation data):
  stacks of `SLICES` axial slices of synthetic "scans": three organs
  (labels 1-3: a large ellipsoid, a round one, a small ring) are 3-D
  bodies of random size and position, so their cross-sections grow and
  shrink along the stack, vanish at its ends and give every slice its own
  class proportions (the size prior of Bateson et al.'s SFDA matters).
  Each organ has its own intensity and texture over a textured tissue
  background. The `modality` maps these tissue intensities to grey levels:
  `source` (a T2-like contrast, little noise) or `target` (another
  scanner/sequence: a brighter background and compressed organ contrasts,
  a multiplicative bias field, blur and more noise), the shift that
  source-free adaptation has to bridge. Labels carry no ignore value (as
  the medical masks).

Scenes are pure functions of `(seed, chunk)`: chunk `k` of a split is drawn
from `np.random.default_rng([seed, k])`, so any chunk can be rebuilt alone.
"""

from __future__ import annotations

import numpy as np

from common.data.shapes32 import render as shapes_render

SIZE = 32
IGNORE = 255
NUM_OBJECT_CLASSES = 20
FEWSHOT_TEXTURES = ("solid", "checker_fine")
CHUNK = 400            # images per independently seeded chunk
SLICES = 8             # slices per volume (a chunk holds whole volumes)
ORGANS = 3             # foreground classes of the volume scenes
MODALITIES = ("source", "target")

_YY, _XX = np.meshgrid(np.arange(SIZE) + 0.5, np.arange(SIZE) + 0.5,
                       indexing="ij")


def _smooth_noise(rng: np.random.Generator, n: int, cells: int) -> np.ndarray:
  """`[n, 32, 32]` bilinear upsampling of uniform noise on a `cells` grid."""
  coarse = rng.random((n, cells, cells))
  idx = np.clip((np.arange(SIZE) + 0.5) * cells / SIZE - 0.5, 0, cells - 1)
  lo = np.floor(idx).astype(int)
  hi, f = np.minimum(lo + 1, cells - 1), idx - lo
  rows = (coarse[:, lo] * (1 - f)[None, :, None]
          + coarse[:, hi] * f[None, :, None])
  return rows[:, :, lo] * (1 - f) + rows[:, :, hi] * f


# ------------------------------------------------------------ few-shot
def class_shape_texture(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Shape and texture indices (into `shapes32.render`) of classes `k`."""
  k = np.asarray(k) - 1
  texture = np.array([shapes_render.TEXTURES.index(t)
                      for t in FEWSHOT_TEXTURES])[k // 10]
  return k % 10, texture


def render_fewshot(rng: np.random.Generator, n: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Renders `n` few-shot scenes.

  Returns:
    (uint8 images `[n, 32, 32, 3]`, uint8 labels `[n, 32, 32]` in
    {0..20, 255}, int64 `main_class` `[n]`: a class every image holds).
  """
  bg_value = rng.uniform(0.15, 0.85, n)
  canvas = shapes_render._background(rng, n, bg_value, 0.25)  # pylint: disable=protected-access
  labels = np.zeros((n, SIZE, SIZE), np.uint8)
  main = rng.integers(1, NUM_OBJECT_CLASSES + 1, n)
  second = (main + rng.integers(1, NUM_OBJECT_CLASSES, n) - 1) % (
      NUM_OBJECT_CLASSES) + 1  # another class
  has_second = rng.random(n) < 0.5
  # The second object (if any) is drawn first, behind the main one.
  for classes, present in ((second, has_second), (main, np.ones(n, bool))):
    shape, texture = class_shape_texture(classes)
    radius = rng.uniform(5.0, 9.0, n)
    u, v = shapes_render._local(rng, n, radius, 0.15, np.pi / 6)  # pylint: disable=protected-access
    sign = np.where(bg_value > 0.5, -1.0, 1.0)
    fg_value = np.clip(bg_value + sign * rng.uniform(0.25, 0.5, n), 0, 1)
    hue = (shape + rng.normal(0, 0.5, n)) / len(shapes_render.SHAPES)
    c1 = shapes_render._hue_colours(fg_value, hue)  # pylint: disable=protected-access
    c2 = shapes_render._colours(np.clip(fg_value + sign * 0.35, 0, 1), rng,  # pylint: disable=protected-access
                                chroma=0.3)
    t = shapes_render.texture_value(texture, u, v, radius, rng)[..., None]
    fill = c1[:, None, None] * (1 - t) + c2[:, None, None] * t
    cover = shapes_render._mask(shape, u, v, radius) * present[:, None, None]  # pylint: disable=protected-access
    shapes_render._paint(canvas, cover, fill)  # pylint: disable=protected-access
    labels = np.where(cover >= 0.8, classes[:, None, None].astype(np.uint8),
                      labels)
    rim = (cover > 0.2) & (cover < 0.8)
    labels = np.where(rim, np.uint8(IGNORE), labels)
  canvas += rng.normal(0, 0.03, canvas.shape)
  images = np.clip(np.round(canvas * 255), 0, 255).astype(np.uint8)
  return images, labels, main.astype(np.int64)


# ------------------------------------------------------------- volumes
# Grey levels of the tissues (background, organ 1, 2, 3) in each modality:
# the target keeps the order bg < 2 < 1 < 3 but lifts the background to
# where the source's organ 2 was and compresses the organs' contrasts.
_TISSUE = {"source": (0.25, 0.75, 0.50, 0.95),
           "target": (0.45, 0.72, 0.60, 0.85)}
_ORGAN_RADIUS = (9.0, 6.0, 4.5)   # mean in-plane radius (pixels) per organ
_ORGAN_DEPTH = (0.55, 0.45, 0.35)  # half-extent along the stack (fraction)


def _organ_distance(organ: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
  """Signed distance (object units) of organ `organ`'s cross-section."""
  r = np.hypot(u, v)
  if organ == 0:
    return (np.hypot(u, v / 0.65) - 1.0) * 0.65  # ellipse
  if organ == 1:
    return r - 1.0                               # disc
  return np.abs(r - 0.7) - 0.3                   # ring


def render_volumes(rng: np.random.Generator, num_volumes: int,
                   modality: str) -> tuple[np.ndarray, np.ndarray]:
  """Renders `num_volumes` stacks of `SLICES` slices.

  Returns:
    (uint8 images `[v * SLICES, 32, 32, 3]`, uint8 labels
    `[v * SLICES, 32, 32]` in {0, 1, 2, 3}); slice `s` of volume `i` is row
    `i * SLICES + s`.
  """
  if modality not in MODALITIES:
    raise ValueError(f"modality must be one of {MODALITIES}, got "
                     f"{modality!r}")
  v, n = num_volumes, num_volumes * SLICES
  z = (np.arange(SLICES) + 0.5) / SLICES  # slice positions in (0, 1)
  levels = _TISSUE[modality]
  gain = 0.8 if modality == "source" else 1.2  # texture contrast
  labels = np.zeros((n, SIZE, SIZE), np.uint8)
  # Background tissue: a smooth texture around its level.
  grey = levels[0] + gain * 0.25 * (_smooth_noise(rng, n, 6) - 0.5)
  body_cy = rng.uniform(12, 20, v)
  body_cx = rng.uniform(12, 20, v)
  for organ in range(ORGANS):
    present = rng.random(v) < 0.9
    radius = _ORGAN_RADIUS[organ] * rng.uniform(0.75, 1.25, v)
    depth = _ORGAN_DEPTH[organ] * rng.uniform(0.8, 1.2, v)
    centre_z = rng.uniform(0.3, 0.7, v)
    offset = rng.normal(0, 4.0, (v, 2)) * (organ > 0)
    theta = rng.uniform(-0.5, 0.5, v)
    # Per-slice cross-section radius of the body (0 outside its extent).
    frac = 1 - ((z[None] - centre_z[:, None]) / depth[:, None]) ** 2
    r = radius[:, None] * np.sqrt(np.clip(frac, 0, None))
    r = np.where(present[:, None], r, 0).reshape(n)
    drift = rng.normal(0, 0.6, (n, 2))
    cy = np.repeat(body_cy + offset[:, 0], SLICES) + drift[:, 0]
    cx = np.repeat(body_cx + offset[:, 1], SLICES) + drift[:, 1]
    c = np.cos(np.repeat(theta, SLICES))[:, None, None]
    s = np.sin(np.repeat(theta, SLICES))[:, None, None]
    dy, dx = _YY[None] - cy[:, None, None], _XX[None] - cx[:, None, None]
    safe = np.maximum(r, 1e-3)[:, None, None]
    u, w = (c * dx + s * dy) / safe, (-s * dx + c * dy) / safe
    cover = np.clip(0.5 - _organ_distance(organ, u, w) * safe, 0, 1)
    cover = cover * (r > 0.5)[:, None, None]
    texture = gain * 0.15 * (_smooth_noise(rng, n, 8) - 0.5)
    grey = grey * (1 - cover) + cover * (levels[organ + 1] + texture)
    labels = np.where(cover >= 0.5, np.uint8(organ + 1), labels)
  return _acquire(rng, grey, modality), labels


def _acquire(rng: np.random.Generator, grey: np.ndarray,
             modality: str) -> np.ndarray:
  """The scanner's effects on grey levels `[n, 32, 32]` (target: bias
  field, blur, more noise), as uint8 `[n, 32, 32, 3]` (grey replicated)."""
  n = len(grey)
  if modality == "target":
    bias = 0.85 + 0.3 * _smooth_noise(rng, n, 3)  # bias field
    grey = grey * bias
    # 3x3 box blur (edge pixels average what exists).
    pad = np.pad(grey, ((0, 0), (1, 1), (1, 1)), mode="edge")
    grey = sum(pad[:, i:i + SIZE, j:j + SIZE]
               for i in range(3) for j in range(3)) / 9
    grey = grey + rng.normal(0, 0.035, grey.shape)
  else:
    grey = grey + rng.normal(0, 0.02, grey.shape)
  out = np.clip(np.round(grey * 255), 0, 255).astype(np.uint8)
  return np.repeat(out[..., None], 3, axis=-1)


# --------------------------------------------------------------- splits
def render_split(kind: str, seed: int, num_examples: int,
                 first_chunk: int = 0) -> dict[str, np.ndarray]:
  """Renders the first `num_examples` images of a split, chunk by chunk.

  Args:
    kind: `fewshot`, `source` or `target`.
    seed: the split's seed.
    num_examples: images wanted (volume splits: a multiple of `SLICES`).
    first_chunk: index of the first chunk.

  Returns:
    `{"image": uint8 [n, 32, 32, 3], "label": uint8 [n, 32, 32]}`, plus
    `"main_class": int64 [n]` for `fewshot`.
  """
  if kind != "fewshot" and num_examples % SLICES:
    raise ValueError(f"volume splits hold whole volumes of {SLICES} slices; "
                     f"got {num_examples} examples")
  parts = []
  for k in range(first_chunk, first_chunk + -(-num_examples // CHUNK)):
    rng = np.random.default_rng([seed, k])
    if kind == "fewshot":
      image, label, main = render_fewshot(rng, CHUNK)
      parts.append({"image": image, "label": label, "main_class": main})
    else:
      image, label = render_volumes(rng, CHUNK // SLICES, kind)
      parts.append({"image": image, "label": label})
  return {key: np.concatenate([p[key] for p in parts])[:num_examples]
          for key in parts[0]}

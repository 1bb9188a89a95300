"""TFDS builder that generates dSprites from its published definition.

dSprites (Matthey et al. 2017, github.com/deepmind/dsprites-dataset) is
every combination of 5 factors, rendered as a 64x64 binary image:

  shape        3 values: square, ellipse, heart
  scale        6 values linearly spaced in [0.5, 1]
  orientation  40 values in [0, 2 pi]  (linspace, so 0 and 2 pi both occur)
  position x   32 values in [0, 1]
  position y   32 values in [0, 1]

stored in mixed-radix order with position y varying fastest (737,280 images).
The README gives the factor values but not the rendering, so the geometry
below is ours (documented, deterministic), not a pixel copy of the release:

* pixel centres sit at integer coordinates 0..63; a sprite's centre is at
  column `16 + 31 * x` and row `16 + 31 * y` (y grows downwards), so the 32
  positions are whole-pixel steps and a translation is an exact shift;
* a scale-s sprite fits in a disc of radius 15 s pixels: a square with
  half-diagonal 15 s (side 21.2 s), an ellipse with semi-axes 15 s and
  7.5 s, and a heart (below) of half-width 15 s. With 15 px every scale step
  changes every shape's pixels (the README's "all pixel outputs were
  different"; at 10 px two square scales would rasterise alike), and the
  largest sprite stays inside the frame at the extreme positions;
* orientation t rotates the sprite counter-clockwise by t (as seen on screen)
  about its centre; a pixel is on if its centre lies inside the rotated shape.

The heart is the classic parametric curve x = 16 sin^3 u,
y = 13 cos u - 5 cos 2u - 2 cos 3u - cos 4u (u in [0, 2 pi), 256 points),
recentred on its bounding box and scaled to half-width 15 s; its lobes point
up at orientation 0. Inside-ness is a polygon test (matplotlib's Path).

The `small` config keeps a subgrid of the factor values (2,304 images) and,
for CPU-sized models, halves the resolution to 32x32 by 2x2 mean pooling
(pixels 0, 64, 128, 191, 255): a quick-run variant, not dSprites itself.

Features follow TFDS `dsprites` (`label_*` class indices, `value_*` factor
values), so the same evaluation code reads both. Images are uint8 0/255
(TFDS `dsprites` stores 0/1; experiments set the target scale accordingly).
Generation is vectorised: each (shape, scale, orientation) sprite is
rendered once and all 1,024 positions are slices of a padded canvas.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from PIL import Image
import tensorflow_datasets as tfds

IMAGE_SIZE = 64
FACTOR_NAMES = ("shape", "scale", "orientation", "x_position", "y_position")
SHAPES = ("square", "ellipse", "heart")
# Factor values exactly as the dSprites README defines them.
FACTOR_VALUES: dict[str, np.ndarray] = {
    "shape": np.arange(1.0, 4.0),           # dSprites stores shapes as 1,2,3
    "scale": np.linspace(0.5, 1.0, 6),
    "orientation": np.linspace(0.0, 2 * np.pi, 40),
    "x_position": np.linspace(0.0, 1.0, 32),
    "y_position": np.linspace(0.0, 1.0, 32),
}
# The `small` config: a subgrid of the class indices (2,304 images). Four
# orientations spanning a quarter turn keep the square's orientations
# distinct (it has 4-fold symmetry).
SMALL_INDICES: dict[str, tuple[int, ...]] = {
    "shape": (0, 1, 2),
    "scale": (0, 3, 5),
    "orientation": (0, 3, 6, 9),
    "x_position": (0, 4, 9, 13, 18, 22, 27, 31),
    "y_position": (0, 4, 9, 13, 18, 22, 27, 31),
}
_RADIUS = 15.0        # pixels, at scale 1
_POSITION_OFFSET = 16  # centre pixel of position 0
_POSITION_SPAN = 31    # position 1 is 31 pixels further
_PAD = 16              # canvas padding so every shift is a plain slice


def factor_grid(indices: dict[str, Sequence[int]] | None = None
                ) -> np.ndarray:
  """Class indices of every image, in dSprites order (y fastest).

  Args:
    indices: per factor, the class indices to keep (default: all).

  Returns:
    int64 `[n, 5]`, columns in `FACTOR_NAMES` order.
  """
  axes = [np.asarray(indices[f] if indices else
                     range(len(FACTOR_VALUES[f])), np.int64)
          for f in FACTOR_NAMES]
  mesh = np.meshgrid(*axes, indexing="ij")
  return np.stack([m.reshape(-1) for m in mesh], axis=1)


def _heart_polygon() -> np.ndarray:
  """`[256, 2]` heart outline (x right, y up), half-width 1, centred."""
  u = np.linspace(0.0, 2 * np.pi, 256, endpoint=False)
  x = 16 * np.sin(u) ** 3
  y = 13 * np.cos(u) - 5 * np.cos(2 * u) - 2 * np.cos(3 * u) - np.cos(4 * u)
  y = y - 0.5 * (y.max() + y.min())   # centre the bounding box
  return np.stack([x, y], axis=1) / 16.0


def _inside(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
  """Whether points (u right, v up; in sprite radii) lie inside `shape`."""
  if shape == 0:   # square with half-diagonal 1
    half = 1.0 / np.sqrt(2.0)
    return (np.abs(u) <= half) & (np.abs(v) <= half)
  if shape == 1:   # ellipse, semi-axes 1 (horizontal) and 0.5
    return u ** 2 + (v / 0.5) ** 2 <= 1.0
  from matplotlib import path as mpath  # pylint: disable=g-import-not-at-top
  heart = mpath.Path(_heart_polygon())
  points = np.stack([u.reshape(-1), v.reshape(-1)], axis=1)
  return heart.contains_points(points).reshape(u.shape)


def _canonical_sprite(shape: int, scale: float, angle: float) -> np.ndarray:
  """bool `[64 + 2 pad, 64 + 2 pad]`: the sprite centred at pixel (48, 48)."""
  n = IMAGE_SIZE + 2 * _PAD
  centre = n // 2
  rows, cols = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
  x = (cols - centre).astype(np.float64)
  y = (centre - rows).astype(np.float64)   # up is +y on screen
  # Rotate the pixel back by -angle: the shape appears rotated by +angle.
  c, s = np.cos(angle), np.sin(angle)
  u = (c * x + s * y) / (_RADIUS * scale)
  v = (-s * x + c * y) / (_RADIUS * scale)
  return _inside(shape, u, v)


def downsample2x(images: np.ndarray) -> np.ndarray:
  """uint8 `[n, h, w, c]` -> `[n, h/2, w/2, c]`, 2x2 mean (rounded)."""
  n, h, w, c = images.shape
  blocks = images.reshape(n, h // 2, 2, w // 2, 2, c).astype(np.float32)
  return np.round(blocks.mean(axis=(2, 4))).astype(np.uint8)


def render_sprites(factors: np.ndarray) -> np.ndarray:
  """Renders images for class-index rows of `factor_grid`.

  Args:
    factors: int `[n, 5]` class indices (shape, scale, orientation, x, y).

  Returns:
    uint8 `[n, 64, 64, 1]`, 0 or 255.
  """
  factors = np.asarray(factors, np.int64)
  out = np.zeros((len(factors), IMAGE_SIZE, IMAGE_SIZE, 1), np.uint8)
  base = np.arange(IMAGE_SIZE)
  keys = factors[:, :3]
  unique, inverse = np.unique(keys, axis=0, return_inverse=True)
  for k, (shape, scale_i, angle_i) in enumerate(unique):
    canvas = _canonical_sprite(int(shape), FACTOR_VALUES["scale"][scale_i],
                               FACTOR_VALUES["orientation"][angle_i])
    rows_of = np.nonzero(inverse.reshape(-1) == k)[0]
    cx = _POSITION_OFFSET + np.round(
        _POSITION_SPAN * FACTOR_VALUES["x_position"][factors[rows_of, 3]])
    cy = _POSITION_OFFSET + np.round(
        _POSITION_SPAN * FACTOR_VALUES["y_position"][factors[rows_of, 4]])
    # Image pixel (r, c) shows canvas pixel (r - cy + centre, c - cx + centre).
    centre = (IMAGE_SIZE + 2 * _PAD) // 2
    r_idx = base[None, :] - cy[:, None].astype(np.int64) + centre
    c_idx = base[None, :] - cx[:, None].astype(np.int64) + centre
    images = canvas[r_idx[:, :, None], c_idx[:, None, :]]
    out[rows_of, :, :, 0] = images.astype(np.uint8) * 255
  return out


_DESCRIPTION = __doc__


class Builder(tfds.core.GeneratorBasedBuilder):
  """dSprites generated in-repo (name: `dsprites_gen`, configs full/small)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = [
      tfds.core.BuilderConfig(
          name="small", description="Subgrid: 3 shapes x 3 scales x 4 "
          "orientations x 8 x 8 positions = 2,304 images, 2x2-mean-pooled "
          "to 32x32."),
      tfds.core.BuilderConfig(
          name="full", description="The full dSprites grid, 737,280 images "
          "at 64x64."),
  ]

  def __init__(self, *, file_format: Any = None, **kwargs: Any):
    super().__init__(file_format=file_format or "array_record", **kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    size = 32 if self.builder_config.name == "small" else IMAGE_SIZE
    features = {"image": tfds.features.Image(shape=(size, size, 1),
                                             dtype=np.uint8)}
    for name in FACTOR_NAMES:
      features[f"label_{name}"] = tfds.features.ClassLabel(
          num_classes=len(FACTOR_VALUES[name]))
      features[f"value_{name}"] = tfds.features.Tensor(shape=(),
                                                       dtype=np.float32)
    return tfds.core.DatasetInfo(
        builder=self, description=_DESCRIPTION,
        features=tfds.features.FeaturesDict(features),
        supervised_keys=("image", "label_shape"),
        homepage="https://github.com/deepmind/dsprites-dataset",
        disable_shuffling=True)

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    del dl_manager  # Nothing to download.
    indices = SMALL_INDICES if self.builder_config.name == "small" else None
    return {"train": self._generate_examples(factor_grid(indices))}

  def _generate_examples(self, grid: np.ndarray
                         ) -> Iterator[tuple[int, dict[str, Any]]]:
    # Blocks of 1,024 rows (one sprite at every position, in the full grid)
    # bound memory; the full set would be 3 GB of pixels at once.
    for start in range(0, len(grid), 1024):
      block = grid[start:start + 1024]
      images = render_sprites(block)
      if self.builder_config.name == "small":
        images = downsample2x(images)
      for offset, (row, image) in enumerate(zip(block, images)):
        buffer = io.BytesIO()
        Image.fromarray(image[:, :, 0]).save(buffer, format="PNG")
        example = {"image": buffer.getvalue()}
        for name, index in zip(FACTOR_NAMES, row):
          example[f"label_{name}"] = int(index)
          example[f"value_{name}"] = np.float32(FACTOR_VALUES[name][index])
        yield start + offset, example

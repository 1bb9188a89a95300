"""Vectorised numpy renderer of the `shapes32` images (32x32 RGB).

Every image holds one large object (the class) drawn over a textured
background, behind and in front of clutter:

  background  two colours mixed by a pattern (gradient, low-frequency
              noise, stripes, checker) whose amplitude grows with
              `difficulty` (0.05 + 0.35 difficulty);
  clutter     0..`1 + 3 difficulty` small distractor shapes of random
              class shapes and colours (behind the object);
  object      one of `SHAPES` (tinted by a hue that is a noisy cue of the
              shape: around `shape / 10` turns, std `0.3 + difficulty`
              class spacings; rotated, scaled, aspect-jittered, placed
              anywhere it mostly fits), filled by one of `TEXTURES` mixing
              two colours, rotated by up to `180 difficulty` degrees
              either way (for 10 classes, the texture's contrast grows
              with `difficulty`); its luminance differs from the
              background's by a gap that shrinks with `difficulty`; its
              radius is drawn from [7 - 2 difficulty, 11] pixels;
  occlusion   with probability `0.1 + 0.5 difficulty`, a bar of a random colour
              across the object;
  noise       per-pixel Gaussian noise, std `(0.02 + 0.08 difficulty)`.

10 classes: the label is the shape (texture and colours are nuisances).
100 classes: the label is `10 * shape + texture`.

Images are pure functions of `(seed, chunk)`: `render_split` draws chunk `k`
(`CHUNK` images, labels a balanced permutation) from
`np.random.default_rng([seed, k])`, so any chunk can be rebuilt alone and
the result does not depend on how many chunks are rendered at once.
"""

from __future__ import annotations

import numpy as np

SIZE = 32
CHUNK = 1000  # images per independently seeded chunk (a multiple of 100)
SHAPES = ("circle", "ellipse", "triangle", "square", "pentagon", "star",
          "cross", "ring", "crescent", "half_disc")
TEXTURES = ("solid", "stripes_fine", "stripes_coarse", "checker_fine",
            "checker_coarse", "dots", "rings", "radial", "gradient",
            "speckle")

_YY, _XX = np.meshgrid(np.arange(SIZE) + 0.5, np.arange(SIZE) + 0.5,
                       indexing="ij")


def _polygon(u: np.ndarray, v: np.ndarray, sides: int) -> np.ndarray:
  """Signed distance (unit circumradius) of a regular polygon."""
  apothem = np.cos(np.pi / sides)
  d = -np.inf
  for i in range(sides):
    a = 2 * np.pi * i / sides + np.pi / 2
    d = np.maximum(d, u * np.cos(a) + v * np.sin(a))
  return d - apothem


def shape_distance(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
  """Approximate signed distance of shape `shape` at local coordinates.

  Args:
    shape: index into `SHAPES`.
    u, v: `[n, 32, 32]` coordinates in the object frame (unit size).

  Returns:
    `[n, 32, 32]`: negative inside, in object units.
  """
  r = np.hypot(u, v)
  name = SHAPES[shape]
  if name == "circle":
    return r - 0.9
  if name == "ellipse":
    return (np.hypot(u, v / 0.5) - 1.0) * 0.5
  if name == "triangle":
    return _polygon(u, v, 3) * 1.15
  if name == "square":
    return _polygon(u, v, 4)
  if name == "pentagon":
    return _polygon(u, v, 5)
  if name == "star":
    return r - (0.6 + 0.38 * np.cos(5 * np.arctan2(v, u)))
  if name == "cross":
    au, av = np.abs(u), np.abs(v)
    return np.minimum(np.maximum(au - 0.3, av - 0.95),
                      np.maximum(au - 0.95, av - 0.3))
  if name == "ring":
    return np.abs(r - 0.7) - 0.22
  if name == "crescent":
    return np.maximum(r - 0.95, 0.8 - np.hypot(u - 0.5, v))
  if name == "half_disc":
    return np.maximum(np.hypot(u, v + 0.35) - 1.0, v - 0.35)
  raise ValueError(f"unknown shape {shape}")


def texture_value(texture: np.ndarray, u: np.ndarray, v: np.ndarray,
                  scale: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """Mixing weight in [0, 1] of the object's second colour.

  Args:
    texture: int `[n]` indices into `TEXTURES`.
    u, v: `[n, 32, 32]` object-frame coordinates (unit size).
    scale: `[n]` object radius in pixels (pattern periods are in pixels).
    rng: source of the speckle.

  Returns:
    `[n, 32, 32]` float weights.
  """
  pu, pv = u * scale[:, None, None], v * scale[:, None, None]  # pixels
  r = np.hypot(pu, pv)
  sq = lambda z: (np.sin(z) > 0).astype(np.float64)
  options = {
      "solid": np.zeros_like(u),
      "stripes_fine": sq(2 * np.pi * pu / 3.0),
      "stripes_coarse": sq(2 * np.pi * pu / 7.0),
      "checker_fine": sq(2 * np.pi * pu / 4.0) != sq(2 * np.pi * pv / 4.0),
      "checker_coarse": sq(2 * np.pi * pu / 8.0) != sq(2 * np.pi * pv / 8.0),
      "dots": ((np.mod(pu, 4.0) - 2) ** 2 + (np.mod(pv, 4.0) - 2) ** 2
               < 1.6),
      "rings": sq(2 * np.pi * r / 4.0),
      "radial": np.clip(np.hypot(u, v), 0, 1),
      "gradient": np.clip((u + 1) / 2, 0, 1),
      "speckle": rng.random(u.shape) < 0.5,
  }
  out = np.zeros_like(u)
  for i, name in enumerate(TEXTURES):
    pick = texture == i
    out[pick] = options[name][pick]
  return out


def _colours(value: np.ndarray, rng: np.random.Generator,
             chroma: float = 0.6) -> np.ndarray:
  """RGB `[n, 3]` in [0, 1] around the grey levels `value` `[n]`."""
  rgb = value[:, None] + chroma * (rng.random((len(value), 3)) - 0.5)
  return np.clip(rgb, 0, 1)


def _hue_colours(value: np.ndarray, hue: np.ndarray,
                 chroma: float = 0.5) -> np.ndarray:
  """RGB `[n, 3]` in [0, 1]: grey levels `value` `[n]` tinted by `hue` `[n]`
  (in turns: 0 red, 1/3 green, 2/3 blue)."""
  phase = 2 * np.pi * (hue[:, None] - np.arange(3) / 3)
  return np.clip(value[:, None] + 0.5 * chroma * np.cos(phase), 0, 1)


def _local(rng: np.random.Generator, n: int, radius: np.ndarray,
           aspect_jitter: float, max_angle: float = np.pi
           ) -> tuple[np.ndarray, np.ndarray]:
  """Object-frame coordinates `[n, 32, 32]` of random placements (rotated
  by at most `max_angle` either way)."""
  margin = 0.6 * radius
  cy = rng.uniform(margin, SIZE - margin)
  cx = rng.uniform(margin, SIZE - margin)
  theta = rng.uniform(-max_angle, max_angle, n)
  aspect = np.exp(rng.uniform(-aspect_jitter, aspect_jitter, n))
  dy, dx = _YY[None] - cy[:, None, None], _XX[None] - cx[:, None, None]
  c, s = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
  u = (c * dx + s * dy) / (radius * aspect)[:, None, None]
  v = (-s * dx + c * dy) * aspect[:, None, None] / radius[:, None, None]
  return u, v


def _mask(shapes: np.ndarray, u: np.ndarray, v: np.ndarray,
          radius: np.ndarray) -> np.ndarray:
  """Anti-aliased coverage `[n, 32, 32]` of per-image shapes."""
  d = np.zeros_like(u)
  for k in range(len(SHAPES)):
    pick = shapes == k
    if pick.any():
      d[pick] = shape_distance(k, u[pick], v[pick])
  return np.clip(0.5 - d * radius[:, None, None], 0, 1)


def _background(rng: np.random.Generator, n: int, value: np.ndarray,
                amplitude: float) -> np.ndarray:
  """Textured backgrounds `[n, 32, 32, 3]` with mean grey level `value`."""
  c1 = _colours(value, rng)
  c2 = _colours(np.clip(value + rng.choice([-1, 1], n) * amplitude, 0, 1),
                rng)
  kind = rng.integers(0, 4, n)
  angle = rng.uniform(0, np.pi, n)[:, None, None]
  along = _XX[None] * np.cos(angle) + _YY[None] * np.sin(angle)
  period = rng.uniform(4, 12, n)[:, None, None]
  coarse = rng.random((n, 5, 5))
  idx = np.clip((np.arange(SIZE) + 0.5) * 5 / SIZE - 0.5, 0, 4)
  lo = np.floor(idx).astype(int)
  hi, f = np.minimum(lo + 1, 4), idx - lo
  rows = coarse[:, lo] * (1 - f)[None, :, None] + coarse[:, hi] * f[None, :,
                                                                      None]
  noise = rows[:, :, lo] * (1 - f) + rows[:, :, hi] * f
  t = np.select(
      [kind[:, None, None] == 0, kind[:, None, None] == 1,
       kind[:, None, None] == 2],
      [along / (SIZE * 1.5), noise,
       (np.sin(2 * np.pi * along / period) > 0).astype(np.float64)],
      (np.sin(2 * np.pi * _XX[None] / period) > 0)
      != (np.sin(2 * np.pi * _YY[None] / period) > 0))
  t = np.clip(t, 0, 1)[..., None]
  return c1[:, None, None] * (1 - t) + c2[:, None, None] * t


def _paint(canvas: np.ndarray, mask: np.ndarray, fill: np.ndarray) -> None:
  """Alpha-blends `fill` `[n, 32, 32, 3]` over `canvas` in place."""
  m = mask[..., None]
  canvas *= 1 - m
  canvas += m * fill


def render(rng: np.random.Generator, labels: np.ndarray, num_classes: int,
           difficulty: float) -> np.ndarray:
  """Renders one image per label.

  Args:
    rng: the chunk's generator (consumed in a fixed order).
    labels: int `[n]` class ids in `[0, num_classes)`.
    num_classes: 10 (label = shape) or 100 (label = 10 shape + texture).
    difficulty: in [0, 1]; see the module docstring.

  Returns:
    uint8 `[n, 32, 32, 3]`.
  """
  if num_classes not in (10, 100):
    raise ValueError(f"num_classes must be 10 or 100, got {num_classes}")
  if not 0.0 <= difficulty <= 1.0:
    raise ValueError(f"difficulty must be in [0, 1], got {difficulty}")
  n = len(labels)
  shape = labels % 10 if num_classes == 10 else labels // 10
  texture = (rng.integers(0, len(TEXTURES), n) if num_classes == 10
             else labels % 10)
  # Grey levels: the object's differs from the background's by `gap`.
  gap = 0.45 - 0.33 * difficulty
  bg_value = rng.uniform(0.1, 0.9, n)
  sign = np.where(bg_value > 0.5, -1.0, 1.0)
  fg_value = np.clip(bg_value + sign * rng.uniform(gap, gap + 0.3, n), 0, 1)
  canvas = _background(rng, n, bg_value, 0.05 + 0.35 * difficulty)

  # Clutter behind the object: small shapes of any class.
  max_clutter = int(round(1 + 3 * difficulty))
  count = rng.integers(0, max_clutter + 1, n)
  for j in range(max_clutter):
    radius = rng.uniform(2.5, 4.5, n)
    u, v = _local(rng, n, radius, 0.2)
    mask = _mask(rng.integers(0, len(SHAPES), n), u, v, radius)
    colour = _colours(rng.uniform(0.1, 0.9, n), rng)
    _paint(canvas, mask * (j < count)[:, None, None],
           np.broadcast_to(colour[:, None, None], canvas.shape))

  # The object.
  radius = rng.uniform(5.5 - 1.5 * difficulty, 8.5, n)
  u, v = _local(rng, n, radius, 0.15, np.pi * difficulty)
  # The shape's hue is a noisy cue: class k is tinted around hue k / 10
  # with a jitter of `0.3 + difficulty` class spacings (std).
  hue = (shape + rng.normal(0, 0.3 + difficulty, n)) / len(SHAPES)
  c1 = _hue_colours(fg_value, hue)
  # A nuisance texture (10 classes) is faint when easy; a class texture
  # (100 classes) always shows.
  contrast = (0.1 + 0.35 * difficulty if num_classes == 10 else 0.35)
  c2 = _colours(np.clip(fg_value + sign * contrast
                        * rng.uniform(0.7, 1.3, n), 0, 1), rng, chroma=0.3)
  t = texture_value(texture, u, v, radius, rng)[..., None]
  fill = c1[:, None, None] * (1 - t) + c2[:, None, None] * t
  _paint(canvas, _mask(shape, u, v, radius), fill)

  # Occluding bar across the object.
  occluded = rng.random(n) < 0.1 + 0.5 * difficulty
  angle = rng.uniform(0, np.pi, n)[:, None, None]
  offset = (u * np.cos(angle) + v * np.sin(angle)) - rng.uniform(
      -0.6, 0.6, n)[:, None, None]
  half_width = rng.uniform(0.12, 0.3, n)[:, None, None] * radius[:, None,
                                                                None]
  bar = np.clip(half_width - np.abs(offset) * radius[:, None, None] + 0.5,
                0, 1)
  colour = _colours(rng.uniform(0.1, 0.9, n), rng)
  _paint(canvas, bar * occluded[:, None, None],
         np.broadcast_to(colour[:, None, None], canvas.shape))

  canvas += rng.normal(0, 0.02 + 0.08 * difficulty, canvas.shape)
  return np.clip(np.round(canvas * 255), 0, 255).astype(np.uint8)


def render_split(seed: int, num_examples: int, num_classes: int,
                 difficulty: float, first_chunk: int = 0
                 ) -> tuple[np.ndarray, np.ndarray]:
  """Renders `num_examples` images chunk by chunk.

  Args:
    seed: the split's seed.
    num_examples: a multiple of `CHUNK`, or fewer than `CHUNK`.
    num_classes: 10 or 100.
    difficulty: in [0, 1].
    first_chunk: index of the first chunk (chunk `k` is seeded `[seed, k]`).

  Returns:
    (uint8 `[n, 32, 32, 3]`, int64 `[n]`); labels are balanced within every
    full chunk.
  """
  images, labels = [], []
  for k in range(first_chunk, first_chunk + -(-num_examples // CHUNK)):
    rng = np.random.default_rng([seed, k])
    y = rng.permutation(np.arange(CHUNK) % num_classes)
    images.append(render(rng, y, num_classes, difficulty))
    labels.append(y)
  return (np.concatenate(images)[:num_examples],
          np.concatenate(labels)[:num_examples].astype(np.int64))

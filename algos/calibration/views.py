"""The transformed copies CA calibration reads: rotated, greyscale and
colour-jittered images.

The CA paper feeds the calibrator the classifier's predictions on rotated,
greyscaled and colour-jittered copies of each image (official option
names `imagenet_val_out_rotation`, `..._grey`, `..._colorjitter`,
`src/options.py`). The script that produced those predictions is not in the
official repository, so the transformation parameters are ours (config
fields of the method): a fixed rotation by `rotation_deg` (bilinear, edge
padded), ITU-R 601 luma greyscale replicated to every channel, and a
per-image torchvision-style colour jitter (brightness, contrast and
saturation factors in `[1 - jitter, 1 + jitter]`, hue in `[-hue, hue]`,
in that order). The pixel operations are CoTTA's
(`algos/tta/cotta_augment.py`, checked against torchvision there).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from algos.tta import cotta_augment

# The calibrator's view order: original, rotation, grey, colour jitter
# (`prediction1_1, prediction1_2, prediction2_2, prediction3_2` of the
# official `run_cal.py`).
VIEWS = ("original", "rotation", "grey", "colorjitter")


def rotate(x: jax.Array, angle_deg: jax.Array) -> jax.Array:
  """`[b, h, w, c]` images in [0, 1] rotated by `angle_deg` about their
  centre (bilinear, edge padded, no blur)."""
  return cotta_augment.pad_affine_blur_crop(x, angle_deg, 0.0, 0.0, 1.0,
                                            1e-3)


def grey(x: jax.Array) -> jax.Array:
  """Luma of `[b, h, w, c]` images, replicated to `c` channels."""
  return jnp.broadcast_to(cotta_augment.grayscale(x), x.shape)


def color_jitter(rng: jax.Array, x: jax.Array, jitter: jax.Array,
                 hue: jax.Array) -> jax.Array:
  """Per-image colour jitter of `[b, h, w, c]` images in [0, 1]:
  brightness, contrast, saturation, then hue, each with its own factor
  per image (torchvision draws the order at random; a fixed order keeps
  the step small to compile)."""
  b = x.shape[0]
  k_f, k_h = jax.random.split(rng)
  f = jax.random.uniform(k_f, (3, b, 1, 1, 1), jnp.float32, 1.0 - jitter,
                         1.0 + jitter)
  shift = jax.random.uniform(k_h, (b, 1, 1), jnp.float32, -hue, hue)
  x = cotta_augment.brightness(x, f[0])
  x = cotta_augment.contrast(x, f[1])
  x = cotta_augment.saturation(x, f[2])
  return cotta_augment.hue(x, shift)


def transformed_views(rng: jax.Array, x: jax.Array, rotation_deg: jax.Array,
                      jitter: jax.Array, hue: jax.Array) -> jax.Array:
  """`[4, b, h, w, c]`: the images and their three transformed copies, in
  the order of `VIEWS`."""
  x = jnp.clip(x, 0.0, 1.0)
  return jnp.stack([x, rotate(x, rotation_deg), grey(x),
                    color_jitter(rng, x, jitter, hue)])

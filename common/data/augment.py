"""Jittable on-device augmentation and normalisation of image batches.

These run inside the jitted train step on the global batch. Randomness is
drawn for the whole batch from one key with one call per operation, so the
result depends only on the key and the batch, not on how the batch is
sharded over devices.

The random functions are jitted (a no-op inside an enclosing jit) so that
eager calls on explicitly sharded arrays draw their randomness on the same
mesh as the batch.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P


def _batch_sharding(images: jax.Array) -> NamedSharding | None:
  """Sharding for per-example random draws: that of the batch axis.

  Under an explicit-sharding mesh (the default of `jax.make_mesh`) `vmap`
  requires its mapped inputs to be sharded alike, so offsets drawn for a
  batch sharded over devices must be sharded the same way.

  Args:
    images: [b, ...] batch, a numpy array, a jax array or a tracer.

  Returns:
    A sharding for arrays whose leading axis is the batch, or None when the
    batch carries no explicit sharding.
  """
  sharding = jax.typeof(images).sharding
  if sharding.mesh.empty or not sharding.spec or sharding.spec[0] is None:
    return None
  return NamedSharding(sharding.mesh, P(sharding.spec[0]))


@functools.partial(jax.jit, static_argnames=("padding", "pad_mode"))
def crop_at(
    images: jax.Array,
    offsets: jax.Array,
    padding: int,
    pad_mode: str = "constant",
) -> jax.Array:
  """Pads every image by `padding` and crops it back at given offsets.

  Args:
    images: [b, h, w, c] images of any dtype.
    offsets: int [b, 2] (row, column) of each crop's top-left corner in the
      padded image, each in [0, 2 * padding].
    padding: Pixels added on each side of height and width.
    pad_mode: `jnp.pad` mode, e.g. `constant` (zeros) or `reflect`.

  Returns:
    [b, h, w, c] crops, same dtype as `images`.
  """
  if padding == 0:
    return images
  _, h, w, c = images.shape
  padded = jnp.pad(
      images, ((0, 0), (padding, padding), (padding, padding), (0, 0)),
      mode=pad_mode)

  def crop_one(image: jax.Array, offset: jax.Array) -> jax.Array:
    return jax.lax.dynamic_slice(image, (offset[0], offset[1], 0), (h, w, c))

  return jax.vmap(crop_one)(padded, offsets)


@functools.partial(jax.jit, static_argnames=("padding", "pad_mode"))
def random_crop(
    rng: jax.Array,
    images: jax.Array,
    padding: int,
    pad_mode: str = "constant",
) -> jax.Array:
  """Pads by `padding` and crops back to [h, w] at a random offset per image.

  The CIFAR standard is padding 4; for 8x8 digits use 1.

  Args:
    rng: PRNG key.
    images: [b, h, w, c] images.
    padding: Pixels added on each side; 0 returns `images` unchanged.
    pad_mode: `jnp.pad` mode of the padding.

  Returns:
    [b, h, w, c] crops, same dtype as `images`.
  """
  if padding == 0:
    return images
  offsets = jax.random.randint(
      rng, (images.shape[0], 2), 0, 2 * padding + 1,
      out_sharding=_batch_sharding(images))
  return crop_at(images, offsets, padding, pad_mode)


@jax.jit
def random_flip_left_right(rng: jax.Array, images: jax.Array) -> jax.Array:
  """Mirrors each image horizontally with probability 1/2.

  Args:
    rng: PRNG key.
    images: [b, h, w, c] images.

  Returns:
    [b, h, w, c] images, same dtype.
  """
  flip = jax.random.bernoulli(rng, 0.5, (images.shape[0],))
  return jnp.where(flip[:, None, None, None], images[:, :, ::-1], images)


def normalize(
    images: jax.Array, mean: Sequence[float], std: Sequence[float]
) -> jax.Array:
  """Maps uint8 images to float32 `(x / 255 - mean) / std` per channel.

  Args:
    images: uint8 [..., c] images.
    mean: Per-channel mean of x / 255 (length c, or 1 to broadcast).
    std: Per-channel standard deviation of x / 255.

  Returns:
    float32 [..., c].
  """
  mean = jnp.asarray(mean, jnp.float32)
  std = jnp.asarray(std, jnp.float32)
  return (images.astype(jnp.float32) / 255.0 - mean) / std


@functools.partial(jax.jit, static_argnames=("crop_padding", "flip"))
def augment(
    rng: jax.Array, images: jax.Array, *, crop_padding: int, flip: bool
) -> jax.Array:
  """Random crop (if `crop_padding` > 0), then random horizontal flip.

  With `crop_padding=0` and `flip=False` this is the identity, so datasets
  without augmentation share the same train step.

  Args:
    rng: PRNG key.
    images: [b, h, w, c] images, typically uint8 (before `normalize`).
    crop_padding: Padding of `random_crop`; 0 disables cropping.
    flip: Whether to apply `random_flip_left_right`.

  Returns:
    [b, h, w, c] images, same dtype.
  """
  crop_rng, flip_rng = jax.random.split(rng)
  images = random_crop(crop_rng, images, crop_padding)
  if flip:
    images = random_flip_left_right(flip_rng, images)
  return images

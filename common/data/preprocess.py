"""On-device preprocessing of a batch into the model's input, by name.

The data config picks one (`config.data.preprocess`); the train step calls
it with the step's augmentation key (or None at evaluation):

* `image`: uint8 `[b, h, w, c]` under `data.input_key` -> random crop / flip
  (train only) -> float32 `(x / 255 - mean) / std`.
* `none`: the array under `data.input_key` unchanged (tokens, vectors, point
  clouds).

A preprocessor is a frozen dataclass with `__call__(batch, rng)` and
`normalize(unit_images)`; new ones register with
`@register_preprocess("name")` on a factory `make(data_config) -> it`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from common import registry
from common.data import augment as augment_lib

PREPROCESSORS = registry.Registry("preprocess", ("common.data",),
                                  "register_preprocess")
register_preprocess = PREPROCESSORS.register


@dataclasses.dataclass(frozen=True)
class ImagePreprocess:
  """uint8 images -> augmented, normalised float32 images."""
  input_key: str
  mean: tuple[float, ...]
  std: tuple[float, ...]
  crop_padding: int = 0
  flip: bool = False

  def __call__(self, batch: dict[str, jax.Array],
               rng: jax.Array | None) -> jax.Array:
    images = batch[self.input_key]
    if rng is not None:
      images = augment_lib.augment(rng, images,
                                   crop_padding=self.crop_padding,
                                   flip=self.flip)
    return augment_lib.normalize(images, self.mean, self.std)

  def normalize(self, unit_images: jax.Array) -> jax.Array:
    """Float images in [0, 1] -> model input (pixel-space augmentations)."""
    mean = jnp.asarray(self.mean, jnp.float32)
    std = jnp.asarray(self.std, jnp.float32)
    return (unit_images - mean) / std


@dataclasses.dataclass(frozen=True)
class Identity:
  """The array under `input_key`, unchanged."""
  input_key: str

  def __call__(self, batch: dict[str, jax.Array],
               rng: jax.Array | None) -> jax.Array:
    del rng
    return batch[self.input_key]

  def normalize(self, x: jax.Array) -> jax.Array:
    return x


@register_preprocess("image")
def make_image(data: Any) -> ImagePreprocess:
  if len(data.mean) != len(data.std):
    raise ValueError(f"data.mean {tuple(data.mean)} and data.std "
                     f"{tuple(data.std)} must have the same length")
  return ImagePreprocess(input_key=data.input_key, mean=tuple(data.mean),
                         std=tuple(data.std), crop_padding=data.crop_padding,
                         flip=data.flip)


@register_preprocess("none")
def make_identity(data: Any) -> Identity:
  return Identity(input_key=data.input_key)


def make(data: Any):
  """The preprocessor named by `data.preprocess`."""
  return PREPROCESSORS.get(data.preprocess)(data)

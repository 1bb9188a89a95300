"""Generator `gan_images`: latents and real images for GAN training.

A GAN's model (the generator) reads a latent `z`, not an image, so GAN
runs use `data.source = "generator"`, `data.input_key = "z"`,
`data.preprocess = "none"`. Every batch holds

* `z`: float32 `[b, latent_dim]` standard normal latents (the model input);
* `image`: float32 `[b, s, s, 1]` real images in [-1, 1] (the
  discriminator's real half), drawn uniformly from the split's bank;
* `label`: int32 `[b]` their classes.

The bank is scikit-learn's 8x8 digits with the same stratified 80/20
train/test split as the TFDS `digits` builder (`common.data.digits`),
bilinearly upsampled to `image_size` (8, 16 or 32). `classes` keeps only
those digits (e.g. a GAN trained without one class).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from common import config as config_lib
from common.data import digits as digits_lib
from common.data import procedural

RULES = {
    "image_size": config_lib.one_of(8, 16, 32),
    "latent_dim": config_lib.at_least(1, integer=True),
    "epoch_size": config_lib.at_least(1, integer=True),
    "eval_examples": config_lib.at_least(1, integer=True),
}


@functools.lru_cache(maxsize=None)
def _digits() -> tuple[np.ndarray, np.ndarray]:
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  d = datasets.load_digits()
  return d.images.astype(np.float32) / 16.0, d.target.astype(np.int32)


def real_images(split: str, image_size: int = 8, classes: tuple[int, ...] = ()
                ) -> tuple[np.ndarray, np.ndarray]:
  """Host `(images [n, s, s, 1] in [-1, 1], labels [n])` of a digits split.

  Args:
    split: "train" or "test" (the TFDS `digits` builder's split).
    image_size: 8 (native), 16 or 32 (bilinear upsampling).
    classes: keep only these digits; () keeps all.
  """
  images, labels = _digits()
  idx = digits_lib.split_indices()[split]
  images, labels = images[idx], labels[idx]
  if classes:
    keep = np.isin(labels, np.asarray(classes))
    images, labels = images[keep], labels[keep]
  x = images[..., None] * 2.0 - 1.0
  if image_size != 8:
    with jax.ensure_compile_time_eval():   # also when first called in a jit
      x = np.asarray(jax.image.resize(
          jnp.asarray(x), (len(x), image_size, image_size, 1), "bilinear"))
  return x.astype(np.float32), labels


def _sampler(images: np.ndarray, labels: np.ndarray, latent_dim: int):
  bank_x, bank_y = jnp.asarray(images), jnp.asarray(labels)

  def sample(key: jax.Array, n: int) -> dict[str, jax.Array]:
    k_z, k_i = jax.random.split(key)
    i = jax.random.randint(k_i, (n,), 0, len(labels))
    return {"z": jax.random.normal(k_z, (n, latent_dim)),
            "image": bank_x[i], "label": bank_y[i]}
  return sample


@procedural.register_generator("gan_images")
def gan_images(config: Any) -> procedural.Generator:
  kw = procedural.settings(config, dict(
      image_size=8, latent_dim=32, classes=(), epoch_size=1438,
      eval_examples=1024), RULES)
  size, latent = int(kw["image_size"]), int(kw["latent_dim"])
  classes = tuple(int(c) for c in kw["classes"])
  if any(not 0 <= c < 10 for c in classes):
    raise config_lib.ConfigError(
        f"config.data.kwargs.classes={classes}; allowed digits 0..9")
  train = _sampler(*real_images("train", size, classes), latent)
  test = _sampler(*real_images("test", size, classes), latent)
  return procedural.Generator(
      sample=train, example=procedural.example_from(train), num_classes=10,
      epoch_size=int(kw["epoch_size"]), eval_sample=test,
      eval_examples=int(kw["eval_examples"]))

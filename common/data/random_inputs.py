"""Random-noise images with the shape and pixel statistics of a dataset.

Generator `random_images`: uint8 images `[n, h, w, c]` of i.i.d. pixels,
`gaussian` (`mean + std * N(0, 1)`, rounded and clipped to [0, 255]) or
`uniform` (on [0, 255]), with uniformly random labels. A control input
distribution: a representation learnt on it carries no structure of real
data (Random Teachers' "random inputs" experiment trains on noise and
probes on the real dataset, `common/eval/linear_probe.py`'s `probe_data`).
The images go through the same `data.preprocess` as the real dataset's.

Settings (`config.data.kwargs`): `height`, `width`, `channels`,
`distribution`, `mean`, `std` (pixel units), `num_classes`, `epoch_size`
(examples per "epoch": match the real dataset's to keep its schedule).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from common import config as config_lib
from common.data import procedural

DEFAULTS = dict(height=8, width=8, channels=1, distribution="gaussian",
                mean=127.5, std=64.0, num_classes=10, epoch_size=1024)
RULES = {
    "height": config_lib.at_least(1, integer=True),
    "width": config_lib.at_least(1, integer=True),
    "channels": config_lib.at_least(1, integer=True),
    "distribution": config_lib.one_of("gaussian", "uniform"),
    "mean": config_lib.between(0.0, 255.0),
    "std": config_lib.at_least(0.0),
    "num_classes": config_lib.at_least(1, integer=True),
    "epoch_size": config_lib.at_least(1, integer=True),
}


def noise_images(rng: jax.Array, n: int, shape: tuple[int, int, int],
                 distribution: str, mean: float, std: float) -> jax.Array:
  """uint8 `[n, *shape]` noise images."""
  if distribution == "uniform":
    x = jax.random.uniform(rng, (n, *shape), minval=0.0, maxval=256.0)
    return jnp.floor(jnp.clip(x, 0.0, 255.0)).astype(jnp.uint8)
  x = mean + std * jax.random.normal(rng, (n, *shape))
  return jnp.clip(jnp.round(x), 0.0, 255.0).astype(jnp.uint8)


@procedural.register_generator("random_images")
def random_images(config: Any) -> procedural.Generator:
  kw = procedural.settings(config, DEFAULTS, RULES)
  shape = (int(kw["height"]), int(kw["width"]), int(kw["channels"]))
  classes = int(kw["num_classes"])

  def sample(rng, n):
    k_image, k_label = jax.random.split(rng)
    return {"image": noise_images(k_image, n, shape, kw["distribution"],
                                  float(kw["mean"]), float(kw["std"])),
            "label": jax.random.randint(k_label, (n,), 0, classes),
            "mask": jnp.ones((n,), bool)}

  return procedural.Generator(
      sample=sample, example=procedural.example_from(sample),
      num_classes=classes, epoch_size=int(kw["epoch_size"]),
      eval_examples=int(kw["epoch_size"]))

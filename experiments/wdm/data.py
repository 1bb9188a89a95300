"""The multi-digits task of the WDM study, as a procedural generator.

x = n sklearn digits (8x8) side by side; y = the *same classes* drawn as
other images of those classes, each view with its own Gaussian pixel noise.
The information the views share is the n class labels, I(x; y) = n log 10
nats. Batches are pure functions of a key (`config.data.source =
"generator"`, `config.data.name = "multi_digits"`): the train step draws
step t's batch from `(seed, t)` on device, so runs resume exactly and agree
on 1 or N devices.

Settings (`config.data.kwargs`): `num_digits` n, `view_noise` (pixel
std), `train_pool` (the first `train_pool` of the 1797 sklearn digits feed
training and the probe's fit; the rest the probe's test), `probe_train`
and `probe_test` (tuples the linear probe fits and scores,
`experiments/wdm/probe.py`).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from common import config as config_lib
from common.data import procedural

NUM_DIGITS_TOTAL = 1797   # sklearn's digits

DEFAULTS = dict(num_digits=2, view_noise=0.3, train_pool=1200,
                probe_train=2000, probe_test=1000)
RULES = {
    "num_digits": config_lib.at_least(1, integer=True),
    "view_noise": config_lib.at_least(0.0),
    "train_pool": config_lib.Rule(
        f"an int in [1, {NUM_DIGITS_TOTAL - 1}] (sklearn has "
        f"{NUM_DIGITS_TOTAL} digits; the rest are the probe's test pool)",
        lambda v: isinstance(v, int) and 1 <= v < NUM_DIGITS_TOTAL),
    "probe_train": config_lib.at_least(10, integer=True),
    "probe_test": config_lib.at_least(1, integer=True),
}


def settings(config: Any) -> dict[str, Any]:
  """The task's settings (`config.data.kwargs` over `DEFAULTS`), checked."""
  kw = procedural.settings(config, DEFAULTS, RULES)
  if kw["probe_test"] < config.train.batch_size:
    raise config_lib.ConfigError(
        f"config.data.kwargs.probe_test={kw['probe_test']} must be >= "
        f"train.batch_size={config.train.batch_size} (the held-out InfoNCE "
        "bound scores blocks of one batch)")
  return kw


@functools.lru_cache(maxsize=4)
def pools(train_pool: int) -> tuple[dict[str, np.ndarray], ...]:
  """(train, test) pools of sklearn digits split at `train_pool`.

  Each pool: "images" `[m, 64]` float32 in [0, 1]; "table" `[10, k]` int32,
  row c the indices of class c (cycled to a common length k); "counts"
  `[10]` members per class.
  """
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  digits = datasets.load_digits()
  images = (digits.images.reshape(-1, 64) / 16.0).astype(np.float32)
  out = []
  for sl in (slice(0, train_pool), slice(train_pool, None)):
    imgs, labels = images[sl], digits.target[sl]
    members = [np.flatnonzero(labels == c) for c in range(10)]
    table = np.zeros((10, max(len(m) for m in members)), np.int32)
    for c, m in enumerate(members):
      table[c] = np.resize(m, table.shape[1])
    out.append({"images": imgs, "table": table,
                "counts": np.asarray([len(m) for m in members], np.int32)})
  return tuple(out)


def sample_views(pool: dict[str, Any], rng: jax.Array, batch: int, n: int,
                 noise: float) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Two views `[b, 64 n]` of `n` random classes, and the classes `[b, n]`.

  Each view draws its own image of every class (so only the classes are
  shared) and its own Gaussian pixel noise.
  """
  k_cls, k_x, k_y, k_nx, k_ny = jax.random.split(rng, 5)
  classes = jax.random.randint(k_cls, (batch, n), 0, 10)
  images, table = jnp.asarray(pool["images"]), jnp.asarray(pool["table"])
  counts = jnp.asarray(pool["counts"])

  def view(k_img, k_noise):
    u = jax.random.uniform(k_img, (batch, n))
    idx = table[classes, (u * counts[classes]).astype(jnp.int32)]
    # Side by side: [b, n, 8, 8] -> [b, 8, 8 n].
    img = images[idx].reshape(batch, n, 8, 8).transpose(0, 2, 1, 3)
    img = img.reshape(batch, 64 * n)
    return img + noise * jax.random.normal(k_noise, img.shape)

  return view(k_x, k_nx), view(k_y, k_ny), classes


@procedural.register_generator("multi_digits")
def make(config: Any) -> procedural.Generator:
  """Batches {"x": [b, 64 n], "y": [b, 64 n], "label": [b, n] int32}.

  `sample` draws from the training pool, `eval_sample` from the held-out
  pool (the probe's test tuples).
  """
  kw = settings(config)
  train_pool, test_pool = pools(int(kw["train_pool"]))
  n, noise = int(kw["num_digits"]), float(kw["view_noise"])

  def draw(pool):
    def sample(rng, batch):
      x, y, classes = sample_views(pool, rng, batch, n, noise)
      return {"x": x, "y": y, "label": classes}
    return sample

  sample = draw(train_pool)
  return procedural.Generator(
      sample=sample, example=procedural.example_from(sample), num_classes=10,
      eval_sample=draw(test_pool), eval_examples=int(kw["probe_test"]))

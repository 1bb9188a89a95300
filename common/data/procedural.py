"""Procedural sources: batches that are pure functions of `(seed, step)`.

Any config can train on generated data instead of a TFDS split by setting
`config.data.source = "generator"` and `config.data.name` to a registered
generator. The train step then draws the global batch of step `t` on device
from `fold_in(fold_in(run_key, DATA), t)` (`common.core.train_step`), split
over the `("data",)` mesh like a fed batch: no host pipeline, no TFDS
builder, exact resume (the batch depends on the step only), and the same
batch on 1 or N devices (`jax_threefry_partitionable`).

A generator registers with `@register_generator("name")` on a factory
`make(config) -> Generator` that reads its settings from the config (its
own section). Point clouds for OT maps, views of digits, trajectories of
dynamical systems and arithmetic sequences are all generators.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp

from common import config as config_lib
from common import registry

GENERATORS = registry.Registry("generator", ("common.data", "experiments",
                                             "algos"), "register_generator")
register_generator = GENERATORS.register

Batch = dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class Generator:
  """A procedural data source.

  Attributes:
    sample: `sample(rng, batch_size) -> batch`, pure `jnp` (jittable); the
      arrays have a leading batch axis.
    example: one example's arrays as `jax.ShapeDtypeStruct`s `[1, ...]`
      (shapes for model init), by batch key.
    num_classes: number of classes (0 when there are no labels).
    epoch_size: examples per "epoch" (steps_per_epoch = epoch_size //
      batch size; epochs only name eval and schedule points).
    eval_sample: draws held-out batches; default `sample` with keys that
      training never uses.
    eval_examples: held-out examples the default evaluation draws.
  """
  sample: Callable[[jax.Array, int], Batch]
  example: dict[str, jax.ShapeDtypeStruct]
  num_classes: int = 0
  epoch_size: int = 0
  eval_sample: Callable[[jax.Array, int], Batch] | None = None
  eval_examples: int = 0

  def __hash__(self):
    return id(self)


def example_from(sample: Callable[[jax.Array, int], Batch]
                 ) -> dict[str, jax.ShapeDtypeStruct]:
  """The `example` of a generator, by tracing one draw of one example."""
  return jax.eval_shape(lambda k: sample(k, 1), jax.random.PRNGKey(0))


def settings(config: Any, defaults: dict[str, Any],
             rules: Mapping[str, config_lib.Rule] | None = None
             ) -> dict[str, Any]:
  """A generator's settings: `config.data.kwargs` over its `defaults`.

  Raises:
    ValueError: a key the generator does not read.
    config_lib.ConfigError: a value outside its declared range (`rules`:
      setting -> `config.Rule`), naming `config.data.kwargs.<key>`.
  """
  given = config.data.kwargs.to_dict()
  unknown = set(given) - set(defaults)
  if unknown:
    raise ValueError(f"config.data.kwargs has {sorted(unknown)}, which "
                     f"generator {config.data.name!r} does not read; it "
                     f"reads {sorted(defaults)}")
  kw = {**defaults, **given}
  for key, rule in (rules or {}).items():
    if not rule.test(kw[key]):
      raise config_lib.ConfigError(
          f"config.data.kwargs.{key}={kw[key]!r} is not allowed: expected "
          f"{rule.allowed}")
  return kw


def make(config: Any) -> Generator:
  """The generator named by `config.data.name`."""
  gen = GENERATORS.get(config.data.name)(config)
  if not isinstance(gen, Generator):
    raise TypeError(f"generator {config.data.name!r} returned "
                    f"{type(gen).__name__}, not a Generator")
  return gen


_EVAL_STREAM = 0xE7A1  # eval keys: disjoint from every train step's key


def eval_batches(gen: Generator, seed: int, batch_size: int,
                 num_examples: int) -> list[Batch]:
  """Fixed held-out batches (the same for every evaluation of a run)."""
  draw = gen.eval_sample or gen.sample
  key = jax.random.fold_in(jax.random.PRNGKey(seed), _EVAL_STREAM)
  n = -(-num_examples // batch_size)
  return [draw(jax.random.fold_in(key, i), batch_size) for i in range(n)]


def split_sampler(split: Mapping[str, Any], with_index: bool = False
                  ) -> Callable[[jax.Array, int], Batch]:
  """`sample(rng, n)` over one fixed split (host arrays with a leading
  example axis, one of them `label`): all of it in order, padded with
  masked rows, when `n` covers it (full-batch training, held-out
  evaluation), else `n` distinct rows drawn at random. With `with_index`
  the batch also holds the rows' `index` (int32)."""
  arrays = {k: jnp.asarray(v) for k, v in split.items()}
  size = len(split["label"])

  def sample(rng: jax.Array, n: int) -> Batch:
    if n >= size:   # the whole split, padded to n rows
      index = jnp.minimum(jnp.arange(n), size - 1)
      mask = jnp.arange(n) < size
    else:
      index = jax.random.permutation(rng, size)[:n]
      mask = jnp.ones((n,), bool)
    batch = {k: v[index] for k, v in arrays.items()}
    batch["mask"] = mask
    if with_index:
      batch["index"] = index.astype(jnp.int32)
    return batch
  return sample


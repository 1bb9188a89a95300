"""Windows of simulated flow fields (generator `cfd_fields`).

CFDBench's Karman-vortex (cylinder) and dam-break flows as the official
code of "Information Shapes Koopman Representation" (arXiv:2510.13025,
Wenxuan52/InformationKoopman, `data/physical_simulation_Dataset.py`) reads
them: one `.npy` array per split, `[n, frames, C, H, W]` (C = 2 velocity
components, 64x64), named `<dataset>_<split>_data.npy` under
`config.data.data_dir` (the official `data/physical_simulation/<dataset>/`
folder after unpacking its archive). The data are not downloadable from
this repository's machines; a missing file is a `FileNotFoundError` that
names the path it looked for.

As the official dataset:
* every channel is standardised with the TRAIN split's mean and std over
  samples, frames and pixels (a std below 1e-6 becomes 1);
* a training example is a window of `length` consecutive frames (the
  official seq_length + 1: inputs x_0..x_{T-1}, targets x_1..x_T) from
  one sample, every start `0 .. frames - length` of every sample equally
  likely (the official pool enumerates exactly these windows).

A batch is `{"x": [b, length, H, W, C] float32, "mask": [b]}` (channels
last, the layout of every image model here). Held-out windows come from
`eval_split` (default "val", as the official trainer validates);
`eval_windows(config, split)` gives all of a split's windows for scoring.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from common import config as config_lib
from common.data import procedural

DEFAULTS = dict(dataset="cylinder", length=17, train_split="train",
                eval_split="val", epoch_size=0)
RULES = {"length": config_lib.at_least(2, integer=True),
         "epoch_size": config_lib.at_least(0, integer=True)}


def field_path(data_dir: str, dataset: str, split: str) -> str:
  return os.path.join(data_dir or ".", f"{dataset}_{split}_data.npy")


@functools.lru_cache(maxsize=4)
def _load(path: str) -> np.ndarray:
  """`[n, frames, H, W, C]` float32 of one split's file."""
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"cfd_fields: no {path} (CFDBench fields, [n, frames, C, H, W] "
        "float; set config.data.data_dir to the folder holding "
        "<dataset>_<split>_data.npy)")
  data = np.load(path, mmap_mode="r")
  if data.ndim != 5:
    raise ValueError(f"cfd_fields: {path} has shape {data.shape}; expected "
                     "[n, frames, C, H, W]")
  return np.ascontiguousarray(np.moveaxis(np.asarray(data, np.float32), 2,
                                          -1))


def statistics(fields: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Per-channel `(mean [C], std [C])` over samples, frames and pixels."""
  mean = fields.mean(axis=(0, 1, 2, 3), dtype=np.float64)
  std = fields.std(axis=(0, 1, 2, 3), dtype=np.float64)
  std[std < 1e-6] = 1.0
  return mean.astype(np.float32), std.astype(np.float32)


def standardised_split(config: Any, split: str) -> np.ndarray:
  """`[n, frames, H, W, C]` of `split`, standardised with train statistics."""
  kw = procedural.settings(config, DEFAULTS, RULES)
  root, name = config.data.data_dir, kw["dataset"]
  mean, std = statistics(_load(field_path(root, name, kw["train_split"])))
  return (_load(field_path(root, name, split)) - mean) / std


def _check_length(fields: np.ndarray, length: int, split: str) -> None:
  if length > fields.shape[1]:
    raise config_lib.ConfigError(
        f"config.data.kwargs.length={length} is not allowed: the {split} "
        f"split has {fields.shape[1]} frames per sample")


def eval_windows(config: Any, split: str | None = None) -> np.ndarray:
  """Every window of `split` (default `eval_split`): `[N, length, H, W, C]`,
  N = n * (frames - length + 1), sample-major as the official pool."""
  kw = procedural.settings(config, DEFAULTS, RULES)
  split = split or kw["eval_split"]
  fields, length = standardised_split(config, split), int(kw["length"])
  _check_length(fields, length, split)
  starts = range(fields.shape[1] - length + 1)
  return np.stack([f[s:s + length] for f in fields for s in starts])


def window_sampler(fields: jax.Array, length: int):
  """`sample(rng, b) -> [b, length, H, W, C]`: uniform over (sample, start)
  pairs of `fields` `[n, frames, H, W, C]`."""
  n, frames = fields.shape[:2]
  per_sample = frames - length + 1

  def sample(rng, b):
    pick = jax.random.randint(rng, (b,), 0, n * per_sample)
    cut = lambda i, s: jax.lax.dynamic_slice_in_dim(fields[i], s, length)
    return jax.vmap(cut)(pick // per_sample, pick % per_sample)
  return sample


@procedural.register_generator("cfd_fields")
def cfd_fields(config: Any) -> procedural.Generator:
  kw = procedural.settings(config, DEFAULTS, RULES)
  length = int(kw["length"])
  train = standardised_split(config, kw["train_split"])
  held_out = standardised_split(config, kw["eval_split"])
  _check_length(train, length, kw["train_split"])
  _check_length(held_out, length, kw["eval_split"])
  draw = window_sampler(jnp.asarray(train), length)
  draw_eval = window_sampler(jnp.asarray(held_out), length)
  windows = train.shape[0] * (train.shape[1] - length + 1)

  def wrap(draw_fn):
    def sample(rng, n):
      return {"x": draw_fn(rng, n), "mask": jnp.ones((n,), bool)}
    return sample

  sample = wrap(draw)
  return procedural.Generator(
      sample=sample, example=procedural.example_from(sample),
      num_classes=0, epoch_size=int(kw["epoch_size"]) or windows,
      eval_sample=wrap(draw_eval), eval_examples=64)

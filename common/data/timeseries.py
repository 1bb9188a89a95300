"""Forecasting windows: regime-switching AR series and the LTSF CSV benchmarks.

Two procedural sources (`config.data.source = "generator"`), both giving
batches `{"x": context [n, L, C], "y": horizon [n, H, C]}` as pure functions
of `(rng, n)`:

* `regime_ar`: multivariate regime-switching autoregressive series. `K`
  regimes, each with its own AR(2) coefficients, level and noise scale per
  channel (fixed by `world_seed`, the same for every run seed); the regime
  follows a Markov chain that leaves its state with probability
  `1 / mean_duration` per step (to one of the other regimes, uniformly) and
  is shared by the channels, so a switch is a change of every channel's
  law at one time step. The batch also carries the true `regime [n, L+H]`
  and `switch [n, L+H]` (regime differs from the step before) for
  evaluating patch boundaries.
* `ltsf_csv`: the long-term forecasting benchmarks (ETTh1/2, ETTm1/2,
  Weather, Electricity) read from `<data_dir>/<dataset>.csv` with the
  standard splits of the Informer/PatchTST loaders (ETT-hour 12/4/4 months,
  ETT-minute the same in 15-minute steps, others 70/10/20 %; each later
  split starts `L` steps early so its first window has a full context) and
  standardisation by the training split's per-channel mean and std. Train
  windows are drawn uniformly (with replacement) from the training split on
  device; `split_windows(config, split)` lists a split's windows in order.
"""

from __future__ import annotations

import csv
import functools
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from common import config as config_lib
from common.data import procedural

# --------------------------------------------------------------------------
# Regime-switching AR(2) series
# --------------------------------------------------------------------------

REGIME_DEFAULTS = dict(context_len=96, horizon=48, channels=4,
                       num_regimes=3, mean_duration=32.0, world_seed=0,
                       burn_in=32, epoch_size=4096, eval_examples=512)
REGIME_RULES = {
    "context_len": config_lib.at_least(2, integer=True),
    "horizon": config_lib.at_least(1, integer=True),
    "channels": config_lib.at_least(1, integer=True),
    "num_regimes": config_lib.at_least(2, integer=True),
    "mean_duration": config_lib.at_least(1.0),
    "burn_in": config_lib.at_least(2, integer=True),
}


def regime_parameters(num_regimes: int, channels: int, world_seed: int
                      ) -> dict[str, np.ndarray]:
  """Per-regime, per-channel AR(2) laws `[K, C]`: level, a1, a2, sigma.

  The AR(2) characteristic roots are a complex pair of radius r in
  [0.5, 0.95] and angle w in [0, pi/3] (stable, some oscillating); levels
  are spread over [-1.5, 1.5] in a channel-specific order, noise scales
  log-uniform in [0.05, 0.4], so regimes differ in level, dynamics and
  predictability.
  """
  rng = np.random.default_rng(world_seed)
  k, c = num_regimes, channels
  levels = np.linspace(-1.5, 1.5, k)
  level = np.stack([rng.permutation(levels) for _ in range(c)], 1)
  r = rng.uniform(0.5, 0.95, (k, c))
  w = rng.uniform(0.0, np.pi / 3, (k, c))
  sigma = np.exp(rng.uniform(np.log(0.05), np.log(0.4), (k, c)))
  return {"level": level.astype(np.float32),
          "a1": (2 * r * np.cos(w)).astype(np.float32),
          "a2": (-r**2).astype(np.float32), "sigma": sigma.astype(np.float32)}


def sample_regime_ar(rng: jax.Array, n: int, *, context_len: int,
                     horizon: int, params: dict[str, Any],
                     mean_duration: float, burn_in: int) -> dict[str, Any]:
  """`n` windows of the regime-switching series (see the module doc).

  Returns `x [n, L, C]`, `y [n, H, C]`, `regime [n, L+H]` int32 and
  `switch [n, L+H]` bool.
  """
  level, a1, a2, sigma = (jnp.asarray(params[k])
                          for k in ("level", "a1", "a2", "sigma"))
  k_regimes, c = level.shape
  steps = burn_in + context_len + horizon
  k0, k_move, k_to, k_eps = jax.random.split(rng, 4)
  z0 = jax.random.randint(k0, (n,), 0, k_regimes)
  move = jax.random.uniform(k_move, (steps, n)) < 1.0 / mean_duration
  offset = jax.random.randint(k_to, (steps, n), 1, k_regimes)
  eps = jax.random.normal(k_eps, (steps, n, c))

  def step(carry, inputs):
    z, x1, x2 = carry
    mv, off, e = inputs
    z = jnp.where(mv, (z + off) % k_regimes, z)
    mu = level[z]                                             # [n, C]
    x = mu + a1[z] * (x1 - mu) + a2[z] * (x2 - mu) + sigma[z] * e
    return (z, x, x1), (z, x)

  start = level[z0]
  _, (zs, xs) = jax.lax.scan(step, (z0, start, start), (move, offset, eps))
  zs, xs = zs.T, jnp.swapaxes(xs, 0, 1)           # [n, T], [n, T, C]
  window = zs[:, burn_in:]
  switch = window != zs[:, burn_in - 1:-1]
  return {"x": xs[:, burn_in:burn_in + context_len],
          "y": xs[:, burn_in + context_len:],
          "regime": window.astype(jnp.int32), "switch": switch}


@procedural.register_generator("regime_ar")
def regime_ar(config: Any) -> procedural.Generator:
  """The regime-switching AR source; settings in `config.data.kwargs`."""
  kw = procedural.settings(config, REGIME_DEFAULTS, REGIME_RULES)
  params = regime_parameters(kw["num_regimes"], kw["channels"],
                             kw["world_seed"])

  def sample(rng, n):
    return sample_regime_ar(
        rng, n, context_len=kw["context_len"], horizon=kw["horizon"],
        params=params, mean_duration=kw["mean_duration"],
        burn_in=kw["burn_in"])
  return procedural.Generator(
      sample=sample, example=procedural.example_from(sample),
      epoch_size=kw["epoch_size"], eval_examples=kw["eval_examples"])


# --------------------------------------------------------------------------
# The LTSF benchmark CSV files
# --------------------------------------------------------------------------

_HOUR = 30 * 24        # steps per "month" at one step per hour
# dataset -> (file stem, steps per hour or 0 for the 70/10/20 split,
# channels)
DATASETS = {"ETTh1": ("ETTh1", 1, 7), "ETTh2": ("ETTh2", 1, 7),
            "ETTm1": ("ETTm1", 4, 7), "ETTm2": ("ETTm2", 4, 7),
            "weather": ("weather", 0, 21),
            "electricity": ("electricity", 0, 321)}
SPLITS = ("train", "val", "test")
CSV_DEFAULTS = dict(dataset="ETTh1", context_len=96, horizon=96,
                    epoch_size=8192)
CSV_RULES = {
    "dataset": config_lib.one_of(*DATASETS),
    "context_len": config_lib.at_least(1, integer=True),
    "horizon": config_lib.at_least(1, integer=True),
}


def split_borders(dataset: str, num_rows: int, context_len: int
                  ) -> dict[str, tuple[int, int]]:
  """Row ranges `[start, end)` of each split (the official loaders')."""
  per_hour = DATASETS[dataset][1]
  if per_hour:
    m = _HOUR * per_hour
    ends = (12 * m, 16 * m, 20 * m)
  else:
    train, test = int(num_rows * 0.7), int(num_rows * 0.2)
    ends = (train, num_rows - test, num_rows)
  starts = (0, ends[0] - context_len, ends[1] - context_len)
  return dict(zip(SPLITS, zip(starts, ends)))


def read_csv(data_dir: str, dataset: str) -> np.ndarray:
  """All channels of `<data_dir>/<dataset>.csv` `[T, C]` float32 (the date
  column dropped; as the official `features='M'` loaders, target last)."""
  path = os.path.join(data_dir or ".", DATASETS[dataset][0] + ".csv")
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"dataset {dataset!r} needs {path} (set config.data.data_dir to the "
        "folder holding the LTSF CSV files)")
  # The csv module, not pandas: pandas is not a dependency.
  with open(path, newline="") as f:
    rows = list(csv.reader(f))
  header, body = rows[0], [r for r in rows[1:] if r]
  cols = [i for i, c in enumerate(header) if i > 0 and c != "OT"]
  cols += [header.index("OT")] if "OT" in header else []
  return np.array([[float(r[i]) for i in cols] for r in body], np.float32)


def standardised_splits(data_dir: str, dataset: str, context_len: int
                        ) -> dict[str, np.ndarray]:
  """Each split's rows `[T_s, C]`, standardised by the training rows."""
  data = read_csv(data_dir, dataset)
  borders = split_borders(dataset, len(data), context_len)
  train = data[borders["train"][0]:borders["train"][1]]
  mean, std = train.mean(0), train.std(0)
  data = (data - mean) / np.where(std > 0, std, 1.0)
  return {s: data[a:b] for s, (a, b) in borders.items()}


def windows(series: np.ndarray, starts: np.ndarray, context_len: int,
            horizon: int) -> dict[str, np.ndarray]:
  """`x [n, L, C]`, `y [n, H, C]` of the windows starting at `starts`."""
  idx = starts[:, None] + np.arange(context_len + horizon)[None]
  w = series[idx]
  return {"x": w[:, :context_len], "y": w[:, context_len:]}


def split_windows(config: Any, split: str) -> dict[str, np.ndarray]:
  """Every window of `split` in order (the evaluation set)."""
  kw = procedural.settings(config, CSV_DEFAULTS, CSV_RULES)
  series = standardised_splits(config.data.data_dir, kw["dataset"],
                               kw["context_len"])[split]
  n = len(series) - kw["context_len"] - kw["horizon"] + 1
  return windows(series, np.arange(n), kw["context_len"], kw["horizon"])


@functools.lru_cache(maxsize=4)
def _train_rows(data_dir: str, dataset: str, context_len: int) -> np.ndarray:
  return standardised_splits(data_dir, dataset, context_len)["train"]


@procedural.register_generator("ltsf_csv")
def ltsf_csv(config: Any) -> procedural.Generator:
  """Training windows of a benchmark CSV, drawn on device.

  The file is read when the first batch is drawn (validating a config
  needs no data); its rows become a constant of the jitted step.
  """
  kw = procedural.settings(config, CSV_DEFAULTS, CSV_RULES)
  length, horizon = kw["context_len"], kw["horizon"]
  data_dir, dataset = config.data.data_dir, kw["dataset"]
  channels = DATASETS[dataset][2]

  def sample(rng, n):
    train = jnp.asarray(_train_rows(data_dir, dataset, length))
    if train.shape[1] != channels:
      raise ValueError(f"{dataset} has {channels} channels; the file in "
                       f"{data_dir!r} has {train.shape[1]}")
    num = train.shape[0] - length - horizon + 1
    starts = jax.random.randint(rng, (n,), 0, num)
    idx = starts[:, None] + jnp.arange(length + horizon)[None]
    w = train[idx]
    return {"x": w[:, :length], "y": w[:, length:]}
  example = {"x": jax.ShapeDtypeStruct((1, length, channels), jnp.float32),
             "y": jax.ShapeDtypeStruct((1, horizon, channels), jnp.float32)}
  return procedural.Generator(sample=sample, example=example,
                              epoch_size=kw["epoch_size"], eval_examples=0)

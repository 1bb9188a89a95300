"""Shared pieces of the benchmarks: generated batches, interleaved timing.

Every benchmark times two step functions side by side in one process,
alternating blocks of steps (A, B, A, B, ...) so that machine noise hits
both equally, and reports the ratio of their median per-step times.
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable

import jax
import numpy as np

import argparse

from common import config as config_lib
from common.core import sharding
from common.protocols import build


# data name -> (image shape, classes, training-set size)
SHAPES = {"digits": ((8, 8, 1), 10, 1437),
          "cifar100": ((32, 32, 3), 100, 50000)}
BASE_CONFIG = "experiments/ps_kd/config.py:digits"


def parser(doc: str, model: str, data: str, rounds: int
           ) -> argparse.ArgumentParser:
  """The flags every benchmark shares."""
  p = argparse.ArgumentParser(description=doc.split("\n")[0])
  p.add_argument("--model", default=model)
  p.add_argument("--data", default=data, choices=list(SHAPES))
  p.add_argument("--batch", type=int, default=128)
  p.add_argument("--dtype", default="float32")
  p.add_argument("--steps", type=int, default=20)
  p.add_argument("--rounds", type=int, default=rounds)
  return p


def overrides(args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
  """Config overrides for `args` on the digits base config."""
  shape = SHAPES[args.data][0]
  out = {"model.name": args.model, "model.dtype": args.dtype,
         "train.batch_size": args.batch, "data.mean": (0.5,) * shape[-1],
         "data.std": (0.5,) * shape[-1]}
  if args.model != "small_cnn":
    out["model.kwargs"] = {}   # the digits config's widths are small_cnn's
  out.update(extra)
  return out


def stepper(setup: build.Setup, batch: dict[str, np.ndarray]
            ) -> Callable[[], Any]:
  """A zero-argument function running one harness step on a fixed batch."""
  box = {"state": setup.init_state(), "batch": device_batch(setup, batch)}

  def step():
    box["state"], metrics, _ = setup.train_step(box["state"], box["batch"],
                                                setup.hparams)
    return metrics["loss"]
  return step


def generated_batch(batch_size: int, image_shape: tuple[int, ...],
                    num_classes: int, num_examples: int,
                    seed: int = 0) -> dict[str, np.ndarray]:
  """A random uint8 batch with the keys the loader produces."""
  rng = np.random.default_rng(seed)
  return {
      "image": rng.integers(0, 256, (batch_size, *image_shape), np.uint8),
      "label": rng.integers(0, num_classes, batch_size).astype(np.int32),
      "index": rng.choice(num_examples, batch_size,
                          replace=False).astype(np.int32),
      "epoch": np.zeros(batch_size, np.int32),
      "mask": np.ones(batch_size, bool),
  }


def build_setup(config_spec: str, overrides: dict[str, Any],
                num_examples: int, num_classes: int,
                image_shape: tuple[int, ...]) -> build.Setup:
  """The experiments' own harness on generated data (no dataset needed)."""
  config = config_lib.apply_overrides(config_lib.load_config(config_spec),
                                      overrides)
  run = build.run_info(config, num_examples, num_classes)
  example = {config.data.input_key: jax.ShapeDtypeStruct(
      (1, *image_shape), np.uint8)}
  return build.build(config, run, example)


def device_batch(setup: build.Setup, batch: dict[str, np.ndarray]):
  return sharding.shard_batch(batch, setup.mesh)


def time_interleaved(fns: dict[str, Callable[[], Any]], steps: int,
                     rounds: int, warmup: int = 3) -> dict[str, float]:
  """Median seconds per call of each fn, timed in alternating blocks.

  Args:
    fns: name -> a zero-argument function that runs one step and returns
      something to block on.
    steps: calls per block.
    rounds: number of (A, B, ...) block rounds.
    warmup: untimed calls of each first (compilation).
  """
  for fn in fns.values():
    for _ in range(warmup):
      jax.block_until_ready(fn())
  per_step = {name: [] for name in fns}
  for _ in range(rounds):
    for name, fn in fns.items():
      start = time.perf_counter()
      out = None
      for _ in range(steps):
        out = fn()
      jax.block_until_ready(out)
      per_step[name].append((time.perf_counter() - start) / steps)
  return {name: statistics.median(v) for name, v in per_step.items()}


def device_name() -> str:
  d = jax.devices()[0]
  return f"{jax.device_count()} x {d.device_kind} ({d.platform})"

"""Temperature and vector scaling: the post-hoc baselines.

Guo, Pleiss, Sun, Weinberger, "On Calibration of Modern Neural Networks",
ICML 2017, arXiv:1706.04599. Temperature scaling as in the CA paper's
official code (liuyvchi/Correctness-aware-calibration,
`src/cal_metrics/temperature_scaling_CA.py`, class `Temperature`): one
temperature, initialised at 1.5, fitted by NLL on the calibration set.

Deviation: the official code fits the temperature with L-BFGS (lr 0.01,
50 iterations); here it is fitted with the shared train step's optimizer
(Adam, full-batch or mini-batch epochs), like every method of the repo.
Both minimise the same convex-in-1/T NLL.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from algos.calibration import frozen
from common.core import method as method_lib


def temperature_init(rng, num_classes):
  del rng, num_classes
  return {"temperature": jnp.full((1,), 1.5, jnp.float32)}


def temperature_scale(params, logits: jax.Array) -> jax.Array:
  """`logits [b, C] / T`."""
  return logits / params["temperature"]


def vector_init(rng, num_classes):
  del rng
  return {"scale": jnp.ones((num_classes,), jnp.float32),
          "bias": jnp.zeros((num_classes,), jnp.float32)}


def vector_scale(params, logits: jax.Array) -> jax.Array:
  """`logits [b, C] * w + b` with per-class `w`, `b` (Guo et al. 2017)."""
  return logits * params["scale"] + params["bias"]


@method_lib.register_method("temperature_scaling")
def make_temperature(config: dict) -> method_lib.Method:
  del config
  return frozen.make_posthoc("temperature_scaling", temperature_init,
                             temperature_scale)


@method_lib.register_method("vector_scaling")
def make_vector(config: dict) -> method_lib.Method:
  del config
  return frozen.make_posthoc("vector_scaling", vector_init, vector_scale)

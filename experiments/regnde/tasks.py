"""RegNeuralDE's CPU tasks: a spiral time series and the NFE evaluator.

* Generator `spiral_series`: windows of the cubic spiral of torchdiffeq's
  `ode_demo.py`, `dy/dt = A y^3` with `A = [[-0.1, 2], [-2, -0.1]]`: a
  start `y0` at radius U[r_min, r_max] and a uniform angle, its true
  trajectory at `linspace(0, t_end, num_times)` (RK4, 16 substeps per
  interval) plus Gaussian noise `noise`. Batches `{"y0": [b, 2],
  "target": [b, T, 2]}`, drawn on device from `(seed, step)`.
* Evaluator `node_prediction`: the prediction-time cost and quality of a
  neural ODE model (`algos/dynamics/node_models.py`) on the eval split:
  `nfe` (vector-field evaluations per eval batch, eval-mode while loop),
  `predict_ms` (wall time of one pass over the eval split through the
  jitted eval step, best of `REPEATS`), `train_nfe` (mean forward NFE per
  training step, kept by the method), `unfinished` (eval batches whose
  solve hit `max_steps`), and `error`/`nll` (labels) or `mse` (targets).
"""

from __future__ import annotations

import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from common import config as config_lib
from common.core import sharding as sharding_lib
from common.data import procedural
from common.eval import evaluators

SPIRAL_A = jnp.array([[-0.1, 2.0], [-2.0, -0.1]])
REPEATS = 3
_DEFAULTS = dict(num_times=10, t_end=0.5, r_min=0.5, r_max=1.5, noise=0.01,
                 num_test=256)
_RULES = {"num_times": config_lib.at_least(2, integer=True),
          "t_end": config_lib.greater_than(0.0),
          "r_min": config_lib.greater_than(0.0),
          "r_max": config_lib.greater_than(0.0),
          "noise": config_lib.at_least(0.0),
          "num_test": config_lib.at_least(1, integer=True)}


def spiral_field(y: jax.Array) -> jax.Array:
  """The true vector field `A y^3` on `[..., 2]`."""
  return (y ** 3) @ SPIRAL_A.T


def rk4_trajectory(y0: jax.Array, ts: jax.Array, substeps: int = 16
                   ) -> jax.Array:
  """Classical RK4 of the spiral from `y0` [b, 2] -> `[b, T, 2]`."""
  def interval(y, dt):
    def step(y, _):
      k1 = spiral_field(y)
      k2 = spiral_field(y + 0.5 * dt * k1)
      k3 = spiral_field(y + 0.5 * dt * k2)
      k4 = spiral_field(y + dt * k3)
      return y + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4), None
    y = jax.lax.scan(step, y, None, length=substeps)[0]
    return y, y
  _, ys = jax.lax.scan(interval, y0, jnp.diff(ts) / substeps)
  return jnp.concatenate([y0[:, None], jnp.moveaxis(ys, 0, 1)], axis=1)


@procedural.register_generator("spiral_series")
def spiral_series(config: Any) -> procedural.Generator:
  kw = procedural.settings(config, _DEFAULTS, _RULES)
  if kw["r_min"] > kw["r_max"]:
    raise config_lib.ConfigError(
        f"config.data.kwargs.r_min={kw['r_min']} > r_max={kw['r_max']}")
  ts = jnp.linspace(0.0, kw["t_end"], kw["num_times"])

  def sample(rng, n):
    k_r, k_a, k_n = jax.random.split(rng, 3)
    r = jax.random.uniform(k_r, (n, 1), minval=kw["r_min"],
                           maxval=kw["r_max"])
    a = jax.random.uniform(k_a, (n, 1), maxval=2 * jnp.pi)
    y0 = jnp.concatenate([r * jnp.cos(a), r * jnp.sin(a)], -1)
    target = rk4_trajectory(y0, ts)
    target = target + kw["noise"] * jax.random.normal(k_n, target.shape)
    return {"y0": y0, "target": target}

  return procedural.Generator(
      sample=sample, example=procedural.example_from(sample),
      epoch_size=1024, eval_examples=kw["num_test"])


def _time_pass(setup, state, batches, keys) -> tuple[list, float]:
  """Outputs of one pass, and the best wall time of `REPEATS` passes."""
  run = lambda: [setup.eval_step(state, b, setup.hparams, output_keys=keys)
                 for b in batches]
  outs = jax.block_until_ready(run())        # compiles
  best = float("inf")
  for _ in range(REPEATS):
    start = time.perf_counter()
    jax.block_until_ready(run())
    best = min(best, time.perf_counter() - start)
  return outs, best


@evaluators.register_evaluator("node_prediction")
def node_prediction(setup: Any, state: Any) -> dict[str, float]:
  """Prediction NFE, time and quality of a neural ODE model (see above)."""
  batches = list(setup.eval_batches())
  keys = ("logits", "nfe", "finished")
  outs, seconds = _time_pass(setup, state, batches, keys)
  host = lambda x: np.asarray(sharding_lib.gather_to_host(x))
  nfe = [float(host(o["nfe"])[0]) for o in outs]
  ms = jax.device_get(state.method_state)
  result = {"nfe": float(np.mean(nfe)), "predict_ms": 1e3 * seconds,
            "train_nfe": float(ms["nfe_sum"] / max(float(ms["steps"]), 1.0)),
            "unfinished": float(sum(host(o["finished"])[0] < 0.5
                                    for o in outs))}
  if "label" in batches[0]:
    logits = np.concatenate([host(o["logits"]) for o in outs])
    labels = np.concatenate([host(b["label"]) for b in batches])
    mask = (np.concatenate([host(b["mask"]) for b in batches]).astype(bool)
            if "mask" in batches[0] else np.ones(len(labels), bool))
    logp = jax.nn.log_softmax(jnp.asarray(logits[mask]))
    result["error"] = 100.0 * float(np.mean(
        np.argmax(logits[mask], -1) != labels[mask]))
    result["nll"] = float(-np.mean(np.take_along_axis(
        np.asarray(logp), labels[mask][:, None], -1)))
  else:
    pred = np.concatenate([host(o["logits"]) for o in outs])
    target = np.concatenate([host(b["target"]) for b in batches])
    result["mse"] = float(np.mean((pred - target) ** 2))
  return result

"""Evaluator `dynamics_reconstruction`: invariant measures of a free run.

As the official GTF evaluation (DurstewitzLab/GTF-shPLRNN `src/evaluation
.jl`, `training.jl`): the trained model runs freely from the first state of
the held-out (noise-free) test trajectory for as many steps as it has, and
is compared with it by D_stsp (binned below 6 dimensions, GMM from 6) and
D_H (power spectra smoothed with std `smoothing`); PE is the 20-step-ahead
prediction error from every test state. The method's `predict` must return
`generated [B, T, N]` and `prediction_error [B, H]` for a batch `{"x": [B,
T, N]}` (see `algos/dynamics/shplrnn.py`).

Settings (`config.eval`, besides `name`): `length` (test steps generated
and compared; official: the whole 100k test set), `n_bins` (30),
`scaling` (GMM variance, 1.0), `smoothing` (20.0).
It also reports the training-time gradient norms kept by the method
(`max_grad_norm`, `mean_grad_norm`) and the final `alpha`.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from common.data import dynamical_generators
from common.eval import dynamics_metrics
from common.eval import evaluators

DEFAULTS = {"length": 100_000, "n_bins": 30, "scaling": 1.0,
            "smoothing": 20.0}


def settings(config: Any) -> dict[str, Any]:
  given = {k: v for k, v in config.eval.to_dict().items() if k != "name"}
  unknown = sorted(set(given) - set(DEFAULTS))
  if unknown:
    raise ValueError(f"config.eval has {unknown}; evaluator "
                     f"dynamics_reconstruction reads {sorted(DEFAULTS)}")
  return {**DEFAULTS, **given}


def free_run(setup: Any, state: Any, test: np.ndarray
             ) -> dict[str, np.ndarray]:
  """The model's free run [T, N] from test[0] and PE curve [H] on test."""
  out = evaluators.predict(setup, state, {"x": test[None]},
                           ("generated", "prediction_error"))
  return {"generated": out["generated"][0],
          "prediction_error": out["prediction_error"][0]}


def reconstruction_metrics(test: np.ndarray, generated: np.ndarray,
                           kw: dict[str, Any]) -> dict[str, float]:
  """D_stsp and D_H of a generated trajectory [T, N] against test [T, N]."""
  if not np.all(np.isfinite(generated)):
    return {"d_stsp": float("nan"), "d_h": float("nan")}
  return {
      "d_stsp": float(dynamics_metrics.state_space_divergence(
          test, generated, n_bins=int(kw["n_bins"]),
          scaling=float(kw["scaling"]), rng=jax.random.PRNGKey(0))),
      "d_h": float(dynamics_metrics.power_spectrum_error(
          test, generated, float(kw["smoothing"]))),
  }


@evaluators.register_evaluator("dynamics_reconstruction")
def evaluate(setup: Any, state: Any) -> dict[str, float]:
  kw = settings(setup.config)
  test = dynamical_generators.dataset(setup.config)["test"][:kw["length"]]
  run = free_run(setup, state, test)
  metrics = reconstruction_metrics(test, run["generated"], kw)
  pe = run["prediction_error"]
  metrics.update(pe_1=float(pe[0]), pe_20=float(pe[-1]))
  ms = jax.device_get(state.method_state)
  steps = max(float(ms.get("steps", 0.0)), 1.0)
  metrics.update(
      max_grad_norm=float(ms.get("max_grad_norm", np.nan)),
      mean_grad_norm=float(ms.get("sum_grad_norm", np.nan)) / steps,
      alpha=float(ms.get("alpha", np.nan)))
  return metrics

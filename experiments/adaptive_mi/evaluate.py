"""The adaptive_mi evaluator: the information plane of every layer.

Each evaluation runs the model on all 4096 inputs of the 12-bit task (as
the official `exctract_activity`, which also takes the softmax of the
output layer), splits the `hidden` output into its layers, adds the
softmax output as the last layer, and returns per layer l = 1..L:
`ixt_ebab_l`, `ity_ebab_l` (entropy-based adaptive binning, official
`num_of_bins = 30`), `ixt_fixed_l`, `ity_fixed_l` (30 equal-width edges on
[-1, 1] for tanh, [low, the layer's max at this epoch] otherwise, [0, 1] for
the softmax layer), `ixt_kde_l`, `ity_kde_l` (adaptive KDE, noise std
`eval.kde_scale` x the layer's range), all in bits; plus `train_error`,
`test_error` (%) and `gen_gap` (test - train error) of the run's split.
Settings: `eval.n_bins`, `eval.kde_scale`, `eval.points`: with
`points > 0` the measures are taken only at about `points` log-spaced steps
(the official `epochs_indexes = unique(logspace(0, log2(epochs), n))`)
and at the end; other calls (the harness calls every
`train.eval_every_epochs`) return nothing, so `eval_every_epochs = 1` gives
the early epochs where the fitting phase happens.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from algos.analysis import adaptive_mi
from common.data import tishby12
from common.eval import evaluators

_JIT = jax.jit(adaptive_mi.information_plane,
               static_argnames=("low", "n_bins", "num_classes"))


def layer_activity(setup: Any, state: Any, data: tishby12.Tishby12
                   ) -> tuple[list[np.ndarray], np.ndarray]:
  """The layers' activity `[n, d_l]` (hidden layers, then the softmax
  output) on every input, in the data's order, and the logits."""
  out = evaluators.predict(setup, state, {"x": data.x}, ("logits", "hidden"))
  sizes = list(setup.config.model.kwargs.hidden_sizes)
  cuts = np.cumsum(sizes)[:-1]
  layers = list(np.split(out["hidden"], cuts, axis=1))
  logits = out["logits"]
  soft = np.exp(logits - logits.max(1, keepdims=True))
  layers.append(soft / soft.sum(1, keepdims=True))
  return layers, logits


def information(layers: list[np.ndarray], x_ids: np.ndarray, y: np.ndarray,
                activation: str, n_bins: int, kde_scale: float
                ) -> dict[str, np.ndarray]:
  """Every estimator on every layer (`adaptive_mi.information_plane`)."""
  low = adaptive_mi.EBAB_LOW[activation]
  width = max(a.shape[1] for a in layers)
  stacked = np.full((len(layers), len(x_ids), width), low, np.float32)
  valid = np.zeros((len(layers), width), bool)
  lo = np.zeros(len(layers), np.float32)
  hi = np.zeros(len(layers), np.float32)
  for i, a in enumerate(layers):
    stacked[i, :, :a.shape[1]] = a
    valid[i, :a.shape[1]] = True
    softmax = i == len(layers) - 1
    if activation == "tanh" and not softmax:
      lo[i], hi[i] = -1.0, 1.0
    else:
      lo[i] = 0.0 if softmax else low
      hi[i] = 1.0 if softmax else max(float(a.max()), lo[i] + 1e-6)
  out = _JIT(stacked, valid, x_ids, y, low, lo, hi, np.float32(kde_scale),
             n_bins=n_bins, num_classes=2)
  return {k: np.asarray(v) for k, v in out.items()}


def log_schedule(total_steps: int, points: int) -> np.ndarray:
  """`points` log-spaced steps in [1, total_steps], rounded, unique."""
  return np.unique(np.rint(np.logspace(
      0.0, np.log10(max(total_steps, 1)), points)).astype(int))


def scheduled(step: int, total: int, every: int, points: int) -> bool:
  """Whether the call at `step` (calls every `every` steps) measures: the
  last step, or the first call at or after a point of `log_schedule`."""
  if points <= 0 or step >= total:
    return True
  grid = log_schedule(total, points)
  return bool(np.any((grid > step - every) & (grid <= step)))


@evaluators.register_evaluator("adaptive_mi")
def evaluate(setup: Any, state: Any) -> dict[str, float]:
  cfg = setup.config
  every = max(cfg.train.eval_every_epochs, 1) * setup.run.steps_per_epoch
  if not scheduled(int(jax.device_get(state.step)), setup.run.total_steps,
                   every, cfg.eval.points):
    return {}
  data = tishby12.dataset_from_config(cfg)
  layers, logits = layer_activity(setup, state, data)
  info = information(layers, data.index, data.label,
                     cfg.model.kwargs.activation, cfg.eval.n_bins,
                     cfg.eval.kde_scale)
  out = {f"{k}_{i + 1}": float(v[i]) for k, v in info.items()
         for i in range(len(layers))}
  wrong = logits.argmax(1) != data.label
  n = data.num_train
  out["train_error"] = float(100.0 * wrong[:n].mean())
  out["test_error"] = float(100.0 * wrong[n:].mean())
  out["gen_gap"] = out["test_error"] - out["train_error"]
  return out

"""The grok_corrupted evaluator: accuracies on the parts of the corrupted
dataset, neurons' Fourier IPR, and (at the end) pruning by IPR.

Every evaluation: accuracy (%) on the training set against its labels,
on its clean part, on its corrupted part against the corrupted labels
(memorisation) and against the true ones, on the test set; the mean IPR of
the neurons and the share (%) with IPR >= `eval.ipr_threshold`. At the
final step also the same accuracies after pruning every neuron with IPR
below the threshold (`pruned_*`, `pruned_neurons` = % pruned), and after
pruning as many neurons at random (`random_pruned_*`, the control).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from algos.analysis import grok_ipr
from common.data import modular
from common.eval import evaluators


def data_arrays(config: Any) -> dict[str, Any]:
  """The run's whole dataset (train first) as the analysis reads it."""
  d = modular.dataset_from_config(config)
  return {"x": d.x, "label": d.label, "true_label": d.true_label,
          "corrupted": d.corrupted, "num_train": d.num_train}


def logits_fn(setup: Any, state: Any, x: np.ndarray):
  """params -> eval-mode logits `[n, p]` on `x` (the run's model state)."""
  model_state = jax.device_get(state.model_state)
  x = jnp.asarray(x)

  def fn(params):
    return setup.model.apply({"params": params, **model_state}, x,
                             train=False)["logits"]
  return fn


def _accuracies(logits, data, prefix=""):
  acc = grok_ipr.subset_accuracies(logits, data["label"], data["true_label"],
                                   data["corrupted"], data["num_train"])
  return {prefix + k: float(v) for k, v in acc.items()}


@evaluators.register_evaluator("grok_corrupted")
def evaluate(setup: Any, state: Any) -> dict[str, float]:
  cfg = setup.config
  data = data_arrays(cfg)
  logits = evaluators.predict(setup, state, {"x": data["x"]},
                              ("logits",))["logits"]
  out = _accuracies(logits, data)
  params = jax.device_get(state.params)
  iprs = np.asarray(grok_ipr.neuron_ipr(params, cfg.eval.ipr_power))
  low = iprs < cfg.eval.ipr_threshold
  out["ipr_mean"] = float(iprs.mean())
  out["ipr_high_frac"] = float(100.0 * (1.0 - low.mean()))
  if int(jax.device_get(state.step)) == setup.run.total_steps:
    fn = logits_fn(setup, state, data["x"])
    out.update(_accuracies(fn(grok_ipr.prune(params, low)), data, "pruned_"))
    random = grok_ipr.prune_order(iprs, "random", cfg.seed)[:low.sum()]
    mask = np.zeros(len(iprs), bool)
    mask[random] = True
    out.update(_accuracies(fn(grok_ipr.prune(params, mask)), data,
                           "random_pruned_"))
    out["pruned_neurons"] = float(100.0 * low.mean())
  return out

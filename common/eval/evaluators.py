"""Evaluators: what a run measures on held-out data, chosen by name.

`config.eval.name` picks one; the loop calls it every
`train.eval_every_epochs` epochs and at the end:

    @register_evaluator("classification")
    def evaluate(setup, state) -> dict[str, float]: ...

`setup` is the protocol's `Setup` (model, method, eval batches, jitted eval
step, config); `state` the `TrainState`. Paper-specific evaluators (a
linear probe, OT map errors, disentanglement scores) register the same way
from `common/eval`, `algos/` or their experiment folder, and are found by
scanning (`common.registry`).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import numpy as np

from common import registry
from common.core import sharding as sharding_lib
from common.eval import metrics as metrics_lib

EVALUATORS = registry.Registry(
    "evaluator", ("common.eval", "algos", "experiments"),
    "register_evaluator")
register_evaluator = EVALUATORS.register

Evaluator = Callable[[Any, Any], dict[str, float]]


def get_evaluator(name: str) -> Evaluator:
  return EVALUATORS.get(name)


def section_settings(config: Any, name: str,
                     defaults: dict[str, Any]) -> dict[str, Any]:
  """`config.eval.<name>` over `defaults`; a key the evaluator does not
  read is a one-line ValueError naming the allowed keys."""
  given = config.eval.get(name, None)
  given = {} if given is None else (
      given.to_dict() if hasattr(given, "to_dict") else dict(given))
  unknown = set(given) - set(defaults)
  if unknown:
    raise ValueError(f"config.eval.{name} has {sorted(unknown)}; allowed "
                     f"keys {sorted(defaults)}")
  return {**defaults, **given}


def eval_arrays(setup: Any, state: Any
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Host `(logits [n, C], labels [n], mask [n])` of the whole eval split."""
  logits, labels, masks = [], [], []
  for batch in setup.eval_batches():
    out = setup.eval_step(state, batch, setup.hparams)
    logits.append(sharding_lib.gather_to_host(out["logits"]))
    labels.append(sharding_lib.gather_to_host(batch["label"]))
    masks.append(sharding_lib.gather_to_host(batch["mask"]) if "mask" in batch
                 else np.ones(len(labels[-1]), bool))
  return (np.concatenate(logits), np.concatenate(labels),
          np.concatenate(masks))


@register_evaluator("classification")
def classification(setup: Any, state: Any) -> dict[str, float]:
  """Error, top-5, NLL, ECE, AURC... of `state` on the whole eval split."""
  return metrics_lib.classification_metrics(*eval_arrays(setup, state))


@register_evaluator("none")
def no_metrics(setup: Any, state: Any) -> dict[str, float]:
  """No held-out evaluation (the loop still logs training metrics)."""
  del setup, state
  return {}


def predict(setup: Any, state: Any, batch: dict[str, Any],
            keys: tuple[str, ...]) -> dict[str, np.ndarray]:
  """The method's eval-mode outputs `keys` (`Method.predict`) on a batch of
  any size, as host arrays.

  For evaluators that read outputs other than the logits (features for a
  probe, a fitted map's images) on a fixed held-out batch: the batch is
  padded (repeating its last row) to a multiple of the device count, run
  through `setup.eval_step` split over the mesh, and cut back.
  """
  n = len(jax.tree.leaves(batch)[0])
  pad = -n % jax.device_count()
  padded = jax.tree.map(
      lambda x: np.concatenate([x, np.repeat(x[-1:], pad, 0)]) if pad else x,
      jax.tree.map(np.asarray, batch))
  padded = jax.device_put(padded, sharding_lib.batch_sharded(setup.mesh))
  out = setup.eval_step(state, padded, setup.hparams, output_keys=tuple(keys))
  return {k: sharding_lib.gather_to_host(v)[:n] for k, v in out.items()}

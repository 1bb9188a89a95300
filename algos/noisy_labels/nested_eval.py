"""Evaluation at the truncation K chosen on a clean validation split.

`config.eval.name = "nested_noisy_labels"` (for `compress_noisy`). As the
official `TestNested` / co-teaching `Evaluation`
(yingyichen-cyy/Nested-Co-teaching, nested/train_resnet.py,
co_teaching_resnet/train.py): the accuracy of every truncation k = 1..d on
the validation split (the mean of the two networks' logits for a pair), the
most accurate k kept (ties to the smaller k). The run's metrics are then the
`noisy_labels` evaluator's (test error, NLL, ECE, memorisation on the
training split) at that k, plus

  num_kept          the chosen k (d for the CE and dropout arms, which the
                    official code evaluates with every unit, `TestStandard`)
  val_error         validation error (%) at k
  error_all_units   test error (%) with all d units (nested arms)

Settings: `config.eval.nested.val_split`, a split expression of the
dataset (clean labels; the label noise applies to the training split only),
e.g. `train[3000:4000]` next to a `train[:3000]` training split.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from algos.noisy_labels import nested_dropout
from algos.noisy_labels import two_nets
from common.core import sharding as sharding_lib
from common.data import loader as loader_lib
from common.data import sources
from common.eval import evaluators
from common.eval import memorisation
from common.eval import metrics as metrics_lib


@functools.lru_cache(maxsize=4)
def _open(name: str, split: str, data_dir: str):
  return sources.open_split(name, split, data_dir or None)


def _features(setup: Any, state: Any, batches) -> tuple[np.ndarray, ...]:
  """Host `(member_features [n, m, d], labels [n], mask [n])`."""
  feats, labels, masks = [], [], []
  for batch in batches:
    out = setup.eval_step(state, batch, setup.hparams,
                          output_keys=("member_features",))
    feats.append(sharding_lib.gather_to_host(out["member_features"]))
    labels.append(sharding_lib.gather_to_host(batch["label"]))
    masks.append(sharding_lib.gather_to_host(batch["mask"]))
  return tuple(np.concatenate(x) for x in (feats, labels, masks))


def _heads(setup: Any, state: Any) -> tuple[np.ndarray, np.ndarray]:
  """`(kernels [m, d, C], biases [m, C])` of the run's networks."""
  pairs = [two_nets.head(net, p) for net, p, _ in two_nets.members(
      setup.model, state.params, state.model_state)]
  return (np.stack([np.asarray(k, np.float64) for k, _ in pairs]),
          np.stack([np.asarray(b, np.float64) for _, b in pairs]))


def counts(setup: Any, state: Any, batches
           ) -> tuple[np.ndarray, int, tuple[np.ndarray, ...]]:
  """`([d] correct per truncation, number of examples, (features, labels,
  mask))` over `batches`."""
  feats, labels, mask = _features(setup, state, batches)
  kernels, biases = _heads(setup, state)
  return (nested_dropout.correct_per_truncation(feats, kernels, biases,
                                                labels, mask),
          int(mask.sum()), (feats, labels, mask))


def logits_at(setup: Any, state: Any, feats: np.ndarray, num_kept: int
              ) -> np.ndarray:
  """`[n, C]` mean over the networks of the logits of the first
  `num_kept` units (what `predict` computes, here from host features)."""
  kernels, biases = _heads(setup, state)
  return np.mean([feats[:, m, :num_kept] @ kernels[m, :num_kept] + biases[m]
                  for m in range(len(kernels))], axis=0)


def val_batches(setup: Any):
  """The global batches of `config.eval.nested.val_split` on the mesh."""
  c = setup.config
  source = _open(c.data.name, c.eval.nested.val_split, c.data.data_dir)
  for local in loader_lib.eval_batches(
      source, c.train.eval_batch_size, jax.process_index(),
      jax.process_count()):
    yield sharding_lib.shard_batch(local, setup.mesh)


@evaluators.register_evaluator("nested_noisy_labels")
def nested_noisy_labels(setup: Any, state: Any) -> dict[str, float]:
  """`noisy_labels` metrics at the validation-chosen K (see module doc)."""
  c = setup.config
  nested = c.method[c.method.name].get("feature_reg") == "nested"
  val_correct, n_val, _ = counts(setup, state, val_batches(setup))
  dim = len(val_correct)
  if nested:
    num_kept, val_acc = nested_dropout.choose_num_kept(val_correct, n_val)
  else:
    num_kept, val_acc = dim, val_correct[-1] / max(n_val, 1)
  at_k = state.replace(method_state={
      **state.method_state, "num_kept": jnp.asarray(num_kept, jnp.int32)})
  # One pass over the test split: every truncation's accuracy and the
  # metrics at K from the same features.
  test_correct, n_test, (feats, labels, mask) = counts(
      setup, state, setup.eval_batches())
  result = metrics_lib.classification_metrics(
      logits_at(setup, state, feats, num_kept), labels, mask)
  result.update(memorisation.memorisation_metrics(
      *memorisation.train_predictions(setup, at_k)))
  result.update(num_kept=float(num_kept), val_error=100.0 * (1 - val_acc))
  if nested:
    result["error_all_units"] = float(100 * (1 - test_correct[-1] / n_test))
  return result

"""PS-KD: Self-Knowledge Distillation with Progressive Refinement of Targets.

Kim, Ji, Yoon, Hwang. ICCV 2021. arXiv:2006.12000.
Official code (PyTorch): https://github.com/lgcnsai/PS-KD-Pytorch

The model distils its own past predictions. Epoch `e` (0-indexed) of `E`
trains on the soft targets

    alpha_e = alpha_T * (e + 1) / E
    y~      = (1 - alpha_e) * onehot(y) + alpha_e * P_prev[idx]

where `P_prev[idx]` is the softmax the model gave example `idx` the last time
it was trained on it (the table starts as the one-hot labels). As in the
official code, the stored prediction is the softmax of the *same* train-mode,
augmented forward pass that is being optimised (no extra forward), detached.

Differences from the official code, on purpose:
* The table `[N, C]` lives on device inside the `TrainState` and is updated
  inside the jitted step (the official code keeps it on the CPU and copies
  every batch), so PS-KD costs no host round trip.
* Rows of padded examples (`mask` false) are never written.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp

from algos.baselines import cross_entropy
from common import config as config_lib
from common.core import method as method_lib


def alpha_at(epoch: jax.Array, alpha_T: jax.Array,
             num_epochs: jax.Array) -> jax.Array:
  """Linear schedule `alpha_T * (epoch + 1) / num_epochs` (epoch 0-indexed)."""
  return alpha_T * (epoch.astype(jnp.float32) + 1.0) / num_epochs


def progressive_targets(labels: jax.Array, past_probs: jax.Array,
                        alpha: jax.Array) -> jax.Array:
  """Soft targets `(1 - alpha) * onehot + alpha * past_probs`.

  Args:
    labels: `[b]` int class labels.
    past_probs: `[b, C]` the table rows of the batch's examples.
    alpha: `[b]` or scalar mixing weight in [0, 1].

  Returns:
    `[b, C]` distributions.
  """
  onehot = jax.nn.one_hot(labels, past_probs.shape[-1], dtype=jnp.float32)
  alpha = jnp.asarray(alpha, jnp.float32)
  if alpha.ndim == 1:
    alpha = alpha[:, None]
  return (1.0 - alpha) * onehot + alpha * past_probs.astype(jnp.float32)


def update_table(table: jax.Array, index: jax.Array, probs: jax.Array,
                 mask: jax.Array) -> jax.Array:
  """Writes `probs` [b, C] into rows `index` [b]; rows with mask false skip."""
  # An out-of-range row with mode="drop" is how a masked row writes nothing.
  safe_index = jnp.where(mask, index, table.shape[0])
  return table.at[safe_index].set(probs.astype(table.dtype), mode="drop")


def init(rng: jax.Array, ctx: method_lib.InitContext):
  """The `[N, C]` prediction table.

  The official code starts the table from the one-hot labels. Labels are not
  known at init without reading the dataset, so rows start at zero and the
  loss uses the one-hot label for any row not yet written (zero row sum),
  which is the same thing.
  """
  del rng
  run = ctx.run
  # bfloat16 halves the table for ImageNet-sized runs (1.28M x 1000).
  dtype = jnp.dtype(ctx.config.get("table_dtype", "float32"))
  return {"table": jnp.zeros((run.num_examples, run.num_classes), dtype)}


AlphaSchedule = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


def loss(hparams, method_state, outputs, batch, params, rng, *,
         alpha_schedule: AlphaSchedule = alpha_at):
  """PS-KD loss and the table update from the same forward pass.

  `alpha_schedule(epoch [b], alpha_T, num_epochs) -> [b]` is the
  target-refinement schedule (the official linear one by default).
  """
  del params, rng
  logits = outputs["logits"].astype(jnp.float32)
  labels, index, mask = batch["label"], batch["index"], batch["mask"]
  table = method_state["table"]
  past = table[index]
  onehot = jax.nn.one_hot(labels, logits.shape[-1], dtype=jnp.float32)
  # Never-visited rows are zero: use the label, as the official code does.
  visited = jnp.sum(past, axis=-1, keepdims=True) > 0
  past = jnp.where(visited, past, onehot)
  alpha = alpha_schedule(batch["epoch"], hparams["alpha_T"],
                         hparams["num_epochs"])
  targets = progressive_targets(labels, past, alpha)
  value = method_lib.masked_mean(
      cross_entropy.soft_cross_entropy(logits, targets), mask)
  probs = jax.lax.stop_gradient(jax.nn.softmax(logits))
  new_state = {"table": update_table(table, index, probs, mask)}
  metrics = {"alpha": jnp.mean(alpha), "ce_hard": method_lib.masked_mean(
      cross_entropy.soft_cross_entropy(logits, onehot), mask)}
  return value, metrics, new_state


def hparams(method_config, run: method_lib.RunInfo):
  """`alpha_T` from the config; the number of epochs from the run itself."""
  return {"alpha_T": float(method_config["alpha_T"]),
          "num_epochs": float(run.num_epochs)}


def make_method(alpha_schedule: AlphaSchedule = alpha_at,
                name: str = "ps_kd") -> method_lib.Method:
  """PS-KD with another target-refinement schedule (for forks/notebooks).

  Args:
    alpha_schedule: `(epoch [b] int, alpha_T, num_epochs) -> alpha [b]`;
      keep it a pure `jnp` function of its (traced) arguments.
    name: the method's name in logs.
  """
  if alpha_schedule is alpha_at and name == "ps_kd":
    return METHOD
  return method_lib.Method(
      name=name, init=init, hparams=hparams,
      loss=functools.partial(loss, alpha_schedule=alpha_schedule),
      rules=RULES)


RULES = {"alpha_T": config_lib.between(0.0, 1.0),
         "table_dtype": config_lib.one_of("float32", "bfloat16", "float16")}
METHOD = method_lib.Method(name="ps_kd", init=init, loss=loss,
                           hparams=hparams, rules=RULES)


@method_lib.register_method("ps_kd")
def make(config: dict) -> method_lib.Method:
  del config  # no static choices
  return METHOD

"""ELR: Early-Learning Regularization Prevents Memorization of Noisy Labels.

Liu, Niles-Weed, Razavian, Fernandez-Granda. NeurIPS 2020. arXiv:2007.00151.
Official code (PyTorch): https://github.com/shengliu66/ELR (ELR/model/loss.py,
`elr_loss`).

Each training example i keeps a temporal ensemble t_i of the model's past
predictions. On a batch, with p = clip(softmax(logits), 1e-4, 1 - 1e-4):

    t_i <- beta * t_i + (1 - beta) * stop_grad(p_i / sum(p_i))
    loss = CE(logits, y~) + lambda * mean_i log(1 - <t_i, p_i>)

The regulariser pushes p_i toward the targets the network agreed on early in
training, before it memorised a wrong label y~. As in the official code: the
targets start at zero, the batch's targets are updated *before* they enter
the loss, the CE term uses the unclipped logits, and the gradient flows
through the clipped p (zero where clipped) but never through t.

Differences from the official code, on purpose:
* The `[N, C]` targets live in `method_state` on device and are updated
  inside the jitted step (the official code indexes a CUDA tensor from
  Python lists). They are replicated on every device: a batch is split
  over the devices, so every device may read any row; at CIFAR scale the
  table is 50,000 x 100 floats (20 MB). Each device writes its rows into
  its copy after the batch's rows are gathered (one all-gather of [b, C]).
* Padded rows (`mask` false) neither write targets nor enter the means.

ELR+ (two networks, mixup, weight averaging; official ELR_plus/) is
algos/noisy_labels/elr_plus.py, built on these functions.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from common import config as config_lib
from common.core import method as method_lib

# The official clamp of the softmax (loss.py: torch.clamp(y_pred, 1e-4,
# 1.0 - 1e-4)): keeps log(1 - <t, p>) finite.
CLIP = 1e-4


def clipped_probs(logits: jax.Array) -> jax.Array:
  """`[b, C]` softmax clipped to [1e-4, 1 - 1e-4] (not renormalised)."""
  return jnp.clip(jax.nn.softmax(logits.astype(jnp.float32), axis=-1),
                  CLIP, 1.0 - CLIP)


def update_targets(targets: jax.Array, index: jax.Array, probs: jax.Array,
                   mask: jax.Array, beta: jax.Array) -> jax.Array:
  """The temporal-ensembling update of the batch's rows.

  Args:
    targets: `[N, C]` the ensemble of every training example.
    index: `[b]` int rows of the batch's examples (distinct).
    probs: `[b, C]` clipped predictions (gradient is stopped here).
    mask: `[b]` bool; false rows are not written.
    beta: scalar momentum of the ensemble.

  Returns:
    `[N, C]` with rows `index` replaced by
    `beta * t + (1 - beta) * probs / sum(probs)`.
  """
  probs = jax.lax.stop_gradient(probs)
  new_rows = beta * targets[index] + (1.0 - beta) * (
      probs / jnp.sum(probs, axis=-1, keepdims=True))
  # An out-of-range row with mode="drop" is how a masked row writes nothing.
  safe = jnp.where(mask, index, targets.shape[0])
  return targets.at[safe].set(new_rows.astype(targets.dtype), mode="drop")


def elr_regulariser(targets: jax.Array, probs: jax.Array) -> jax.Array:
  """`[b]` values of log(1 - <t_i, p_i>) (t without gradient)."""
  t = jax.lax.stop_gradient(targets.astype(jnp.float32))
  return jnp.log(1.0 - jnp.sum(t * probs, axis=-1))


def init(rng: jax.Array, ctx: method_lib.InitContext):
  """Zero targets `[N, C]`, as the official `torch.zeros(num_examp, C)`."""
  del rng
  if ctx.run.num_examples <= 0:
    raise ValueError("ELR keeps one target per training example: it needs a "
                     "dataset split (data.source='tfds'), not a generator")
  return {"targets": jnp.zeros((ctx.run.num_examples, ctx.run.num_classes),
                               jnp.float32)}


def loss(hparams, method_state, outputs, batch, params, rng):
  """CE on the (noisy) labels + lambda * the ELR term; the target update."""
  del params, rng
  logits = outputs["logits"].astype(jnp.float32)
  labels, index, mask = batch["label"], batch["index"], batch["mask"]
  probs = clipped_probs(logits)
  targets = update_targets(method_state["targets"], index, probs, mask,
                           hparams["beta"])
  ce = method_lib.masked_mean(
      -jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None],
                           axis=-1)[:, 0], mask)
  reg = method_lib.masked_mean(elr_regulariser(targets[index], probs), mask)
  value = ce + hparams["lam"] * reg
  return value, {"ce": ce, "elr": reg}, {"targets": targets}


RULES = {"lam": config_lib.at_least(0.0),
         "beta": config_lib.between(0.0, 1.0)}
METHOD = method_lib.Method(name="elr", init=init, loss=loss,
                           hparams=method_lib.default_hparams, rules=RULES)


@method_lib.register_method("elr")
def make(config: dict) -> method_lib.Method:
  del config  # no static choices
  return METHOD

"""AEM: attention entropy maximisation for multiple-instance learning.

Paper: Zhang et al., "AEM: Attention Entropy Maximization for Multiple
Instance Learning based Whole Slide Image Classification", 2024,
arXiv 2406.15303. Official code (PyTorch): https://github.com/dazhangyu123/AEM
(`main.py: train_one_epoch`, `architecture/transformer.py: ABMIL`).

The objective of one bag, as `train_one_epoch` computes it for ABMIL:

    loss = CE(logits, y) + lambda * sum_i a_i log a_i
         = CE(logits, y) - lambda * H(a),   a = softmax(attention scores)

so the regulariser rewards spreading attention over the bag (the paper's
remedy for attention over-concentration). `lambda = 0` is plain ABMIL
(the official baseline command uses `--lamda 0`); the paper's default is
`lambda = 0.1`.

Differences from the official code, on purpose:
* Bags are batched: a batch holds `b` padded bags (`instance_mask`), the
  entropy sums over each bag's valid instances only, and the loss is the
  mean over bags. With one bag per batch (`train.batch_size=1`, the official
  `B: 1`) it is the official per-bag loss.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from common import config as config_lib
from common.core import method as method_lib
from common.models import abmil


def attention_neg_entropy(scores: jax.Array, mask: jax.Array) -> jax.Array:
  """`[b]` values of sum_i a_i log a_i over each bag's valid instances.

  Args:
    scores: `[b, n]` pre-softmax attention scores.
    mask: `[b, n]` bool, valid instances.
  """
  masked = jnp.where(mask, scores.astype(jnp.float32), abmil.NEG_INF)
  log_a = jax.nn.log_softmax(masked, axis=-1)
  return jnp.sum(jnp.where(mask, jnp.exp(log_a) * log_a, 0.0), axis=-1)


def aem_loss(logits: jax.Array, labels: jax.Array, scores: jax.Array,
             instance_mask: jax.Array, bag_mask: jax.Array, lam: jax.Array
             ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Mean over valid bags of CE + lam * sum a log a.

  Args:
    logits: `[b, C]` bag logits.
    labels: `[b]` int bag labels.
    scores: `[b, n]` attention scores; instance_mask `[b, n]` bool.
    bag_mask: `[b]` bool, bags that count (padding rows false).
    lam: scalar strength (0: ABMIL's cross-entropy).

  Returns:
    `(loss, {"ce", "attention_entropy"})`.
  """
  logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  ce = -jnp.take_along_axis(logp, labels[:, None], axis=-1)[:, 0]
  neg_h = attention_neg_entropy(scores, instance_mask)
  ce_mean = method_lib.masked_mean(ce, bag_mask)
  neg_h_mean = method_lib.masked_mean(neg_h, bag_mask)
  return ce_mean + lam * neg_h_mean, {"ce": ce_mean,
                                      "attention_entropy": -neg_h_mean}


def loss(hparams, method_state, outputs, batch, params, rng):
  del params, rng
  bag_mask = batch.get("mask", jnp.ones(batch["label"].shape, bool))
  value, metrics = aem_loss(outputs["logits"], batch["label"],
                            outputs["attention_scores"],
                            batch["bag"]["instance_mask"], bag_mask,
                            hparams["lam"])
  return value, metrics, method_state


RULES = {"lam": config_lib.at_least(0.0)}
METHOD = method_lib.Method(name="aem", loss=loss,
                           hparams=method_lib.default_hparams, rules=RULES)


@method_lib.register_method("aem")
def make(config: dict) -> method_lib.Method:
  del config  # no static choices
  return METHOD

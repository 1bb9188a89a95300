"""Evaluator `mil`: bag classification and instance localisation.

For multiple-instance models whose outputs include `attention` `[b, n]`
(e.g. `abmil`) on batches with `bag.instance_mask` and `instance_label`
(e.g. the `mil_digits` generator):

* `bag_auc`: ROC AUC of the positive-class probability (binary bags; the
  macro one-vs-rest AUC for more classes, as the official AEM code's
  torchmetrics `AUROC(average="macro")`), `error` and `nll`;
* `attention_entropy`: mean over bags of -sum_i a_i log a_i, and
  `attention_entropy_ratio`, the same over log(bag size) (1 = uniform);
* `attention_max`: mean largest attention weight of a bag;
* `instance_auc`: ROC AUC of the attention weights against the instance
  labels, pooled over the instances of positive bags (localisation: does
  attention fall on the positive instances?).
"""

from __future__ import annotations

import collections
from typing import Any

import numpy as np
from sklearn import metrics as sk_metrics

from common.core import sharding as sharding_lib
from common.eval import evaluators


def bag_and_instance_metrics(logits: np.ndarray, labels: np.ndarray,
                             attention: np.ndarray, instance_mask: np.ndarray,
                             instance_labels: np.ndarray) -> dict[str, float]:
  """The metrics above from host arrays (`[b, C]`, `[b]`, `[b, n]` x3)."""
  logits = logits.astype(np.float64)
  logp = logits - logits.max(-1, keepdims=True)
  logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
  probs = np.exp(logp)
  if probs.shape[1] == 2:
    auc = sk_metrics.roc_auc_score(labels, probs[:, 1])
  else:
    auc = sk_metrics.roc_auc_score(labels, probs, multi_class="ovr",
                                   average="macro")
  a = np.where(instance_mask, attention.astype(np.float64), 0.0)
  ent = -np.sum(np.where(a > 0, a * np.log(np.where(a > 0, a, 1.0)), 0.0), -1)
  size = instance_mask.sum(-1)
  positive = labels > 0
  inst = instance_mask & positive[:, None]
  out = {"bag_auc": float(auc),
         "error": float(np.mean(probs.argmax(-1) != labels)),
         "nll": float(-np.mean(logp[np.arange(len(labels)), labels])),
         "attention_entropy": float(np.mean(ent)),
         "attention_entropy_ratio": float(np.mean(
             ent / np.log(np.maximum(size, 2)))),
         "attention_max": float(np.mean(a.max(-1)))}
  y_inst = instance_labels[inst]
  if 0 < y_inst.sum() < len(y_inst):
    out["instance_auc"] = float(sk_metrics.roc_auc_score(y_inst, a[inst]))
  return out


@evaluators.register_evaluator("mil")
def evaluate(setup: Any, state: Any) -> dict[str, float]:
  """The metrics above on the whole held-out split (padded rows dropped)."""
  parts = collections.defaultdict(list)
  for batch in setup.eval_batches():
    out = setup.eval_step(state, batch, setup.hparams,
                          output_keys=("logits", "attention"))
    for k, v in (("logits", out["logits"]), ("attention", out["attention"]),
                 ("label", batch["label"]), ("mask", batch["mask"]),
                 ("instance_mask", batch["bag"]["instance_mask"]),
                 ("instance_label", batch["instance_label"])):
      parts[k].append(sharding_lib.gather_to_host(v))
  cat = {k: np.concatenate(v) for k, v in parts.items()}
  keep = cat.pop("mask").astype(bool)
  cat = {k: v[keep] for k, v in cat.items()}
  return bag_and_instance_metrics(cat["logits"], cat["label"],
                                  cat["attention"], cat["instance_mask"],
                                  cat["instance_label"])

"""Novel-class-discovery evaluation of the UNO-based methods (UNO, CRKD).

The official CRKD evaluation (kleinzcy/Cr-KD-NCD `rKD.py:test`,
`utils/eval_utils.py`) reports, per novel head and at the best head (lowest
cumulative training loss):

* task-aware novel accuracy: examples of novel classes, the argmax of the
  novel head alone, Hungarian-matched to the novel classes (`cluster_eval`,
  the NCD papers' headline number, on the unlabelled training split);
* task-agnostic All / Old / New: every example, the argmax over
  `[known head, novel head]`, one Hungarian map over all classes
  (`split_cluster_acc_v2`), on the test split.

Evaluator `ncd` computes both on the run's eval split (the shared
category-discovery split decides which: `data.category_discovery.eval_on`);
it needs a method whose `predict` returns `logits`, `logits_novel` and
`logits_unlab` (`algos/discovery/uno.py:discovery_predict`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from common.core import sharding as sharding_lib
from common.eval import category_discovery
from common.eval import evaluators

_KEYS = ("logits", "logits_novel", "logits_unlab")


def ncd_metrics(labels: np.ndarray, logits: np.ndarray,
                logits_unlab: np.ndarray, best_head: int,
                num_labeled: int) -> dict[str, float]:
  """The metrics of one eval split.

  Args:
    labels: int `[n]`, known classes `< num_labeled`.
    logits: `[n, L + K]` known head and the best novel head.
    logits_unlab: `[n, H, K]` every novel head.
    best_head: index of the best head.
    num_labeled: L.

  Returns:
    `novel_acc` (task-aware, best head), `novel_acc_mean_heads`, and the
    task-agnostic `all_acc`, `old_acc`, `new_acc` (v2; nan for a group
    absent from the split).
  """
  novel = labels >= num_labeled
  out = {}
  if novel.any():
    y = labels[novel] - num_labeled
    per_head = [category_discovery.cluster_accuracy(
        y, logits_unlab[novel, h].argmax(-1))
                for h in range(logits_unlab.shape[1])]
    out["novel_acc"] = per_head[best_head]
    out["novel_acc_mean_heads"] = float(np.mean(per_head))
  out.update({k: v for k, v in category_discovery.report(
      labels, logits.argmax(-1), ~novel).items()
              if k in ("all_acc", "old_acc", "new_acc")})
  return out


@evaluators.register_evaluator("ncd")
def evaluate(setup: Any, state: Any) -> dict[str, float]:
  """`ncd_metrics` of `state` on the whole eval split."""
  parts = {k: [] for k in (*_KEYS, "label")}
  for batch in setup.eval_batches():
    out = setup.eval_step(state, batch, setup.hparams, output_keys=_KEYS)
    mask = (sharding_lib.gather_to_host(batch["mask"]) if "mask" in batch
            else None)
    for k in _KEYS:
      parts[k].append(sharding_lib.gather_to_host(out[k]))
    parts["label"].append(sharding_lib.gather_to_host(batch["label"]))
    if mask is not None:
      for k in parts:
        parts[k][-1] = parts[k][-1][mask]
  arrays = {k: np.concatenate(v) for k, v in parts.items()}
  best = int(np.argmin(np.asarray(state.method_state["loss_per_head"])))
  return ncd_metrics(arrays["label"], arrays["logits"],
                     arrays["logits_unlab"], best,
                     setup.model.num_labeled)

"""The `hidden_rank` evaluator: MNN and Matrix Entropy of an LM's states.

For `mnn` (arXiv:2410.10672; `algos/analysis/matrix_nuclear_norm.py`).
Runs the `lm` evaluator (held-out loss, perplexity, bits) and, on the
first `config.eval.hidden_rank.max_rows` rows of the eval split, scores
each row's final hidden states `[T, d]` (the method's `features`
output, the final-normed residual stream, as the official script's
`AutoModel(...)[0]`) on its own, over its counted targets:

* `mnn`: Matrix Nuclear-Norm / T, averaged over rows;
* `matrix_entropy`: normalised von Neumann entropy of the Gram matrix,
  averaged over rows.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import numpy as np

from algos.analysis import matrix_nuclear_norm as mnn_lib
from common.core import sharding as sharding_lib
from common.eval import evaluators
from common.eval import language

_DEFAULT_ROWS = 64


@functools.partial(jax.jit)
def _scores(features: jax.Array, mask: jax.Array) -> dict[str, jax.Array]:
  return mnn_lib.batch_scores(features, mask)


def hidden_scores(setup: Any, state: Any, max_rows: int
                  ) -> dict[str, float]:
  """Mean per-row `{"mnn", "matrix_entropy"}` over the first `max_rows`
  eval rows."""
  sums = {"mnn": 0.0, "matrix_entropy": 0.0}
  rows = 0
  for batch in setup.eval_batches():
    out = setup.eval_step(state, batch, setup.hparams,
                          output_keys=("features",))
    feats = sharding_lib.gather_to_host(out["features"])
    mask = sharding_lib.gather_to_host(batch["loss_mask"]).astype(bool)
    if "mask" in batch:
      mask &= sharding_lib.gather_to_host(batch["mask"]).astype(bool)[:, None]
    keep = mask.any(axis=1)[: max_rows - rows]
    if keep.any():
      n = len(keep)
      got = _scores(feats[:n][keep], mask[:n][keep])
      for k in sums:
        sums[k] += float(np.sum(got[k]))
      rows += int(keep.sum())
    if rows >= max_rows:
      break
  if rows == 0:
    raise ValueError("hidden_rank: the eval split has no counted rows")
  return {k: v / rows for k, v in sums.items()}


@evaluators.register_evaluator("hidden_rank")
def evaluate(setup: Any, state: Any) -> dict[str, float]:
  """`lm` metrics plus `mnn` and `matrix_entropy` of the eval rows."""
  max_rows = int(evaluators.section_settings(
      setup.config, "hidden_rank", {"max_rows": _DEFAULT_ROWS})["max_rows"])
  if max_rows < 1:
    raise ValueError(f"config.eval.hidden_rank.max_rows={max_rows}; "
                     "allowed: an integer >= 1")
  out = language.evaluate(setup, state)
  out.update(hidden_scores(setup, state, max_rows))
  return out

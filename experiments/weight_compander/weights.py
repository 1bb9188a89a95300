"""Evaluator `classification_wc`: classification metrics plus statistics of
the effective weights (`config.eval.name = "classification_wc"`).

The paper's analysis: weight compander restricts the magnitude of the
weights and leaves fewer of them near zero. Over the kernels the compander
selects (`method.weight_compander.include`, default every `kernel`; the
same selection for the baseline arms), each weight is measured in units of
its leaf's default-init scale, `w * sqrt(fan_in)`:

* `w_max_abs`: the largest `|w| sqrt(fan_in)` of a leaf, mean over leaves;
* `w_near_zero`: the fraction of weights with `|w| sqrt(fan_in) < 0.1`;
* `w_rms`: root mean square of `w sqrt(fan_in)` over all selected weights.

With the `weight_compander` method the effective weights are the
companded ones (what the forward uses); otherwise the raw parameters.
"""

from __future__ import annotations

import math
import re
from typing import Any

import jax
import numpy as np

from algos.regularizers import weight_compander as wc_lib
from common.eval import evaluators


def weight_stats(params: Any, include: str = r"kernel$",
                 exclude: str = "") -> dict[str, float]:
  """The three statistics above of a (model) params pytree."""
  maxes, near, total, sq = [], 0, 0, 0.0
  for path, leaf in jax.tree_util.tree_leaves_with_path(params):
    name = wc_lib.path_name(path)
    if not re.search(include, name) or (exclude and re.search(exclude, name)):
      continue
    w = np.asarray(leaf, np.float64)
    fan_in = math.prod(w.shape[:-1]) if w.ndim > 1 else 1
    u = np.abs(w) * math.sqrt(fan_in)
    maxes.append(u.max())
    near += int((u < 0.1).sum())
    total += u.size
    sq += float((u ** 2).sum())
  return {"w_max_abs": float(np.mean(maxes)),
          "w_near_zero": near / max(total, 1),
          "w_rms": math.sqrt(sq / max(total, 1))}


@evaluators.register_evaluator("classification_wc")
def classification_wc(setup: Any, state: Any) -> dict[str, float]:
  """`classification` + the effective-weight statistics."""
  out = evaluators.classification(setup, state)
  config = setup.config
  section = config.method.get("weight_compander")
  cfg = {**wc_lib._DEFAULTS, **(section.to_dict() if section else {})}  # pylint: disable=protected-access
  params = jax.device_get(state.params)
  if config.method.name == "weight_compander":
    hp = {k: np.float32(v) for k, v in jax.device_get(
        setup.hparams["method"]).items()}
    params = jax.device_get(jax.jit(
        lambda p, h: wc_lib.effective_params(p, h, cfg))(params, hp))
  out.update(weight_stats(params, cfg["include"], cfg["exclude"]))
  return out

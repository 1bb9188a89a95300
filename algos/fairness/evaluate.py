"""The `fairness` evaluator: task loss and marginal / intersectional disparity.

For dcov_fairness (Lee et al. 2025, arXiv:2509.08163). On the held-out rows
of a `fair_insurance` / `compas` source (`insurance_data`), with the
prediction of `dcov_fairness.prediction` (the output, or its sigmoid):

* task: `mse` (regression) or `bce` and `accuracy` (classification);
* marginal disparity: `js_<attr>`, the generalised JS divergence (bits) of
  the prediction laws across the groups of each protected attribute
  (continuous ones in training-quantile bands), and `js_marginal_max`;
* intersectional disparity over the attributes `config.fairness.intersect`
  (default gender x region, as the authors' companion code): `js_inter`
  (generalised JSD), `js_inter_max` (max over subgroups of JS(subgroup,
  population): the claim's measure), `uf_inter` (variance of subgroup
  means / variance of predictions); `js_full` over all attributes;
* dependence on the whole held-out set (V-statistics): `dcov_marginal`,
  `ccdcov`, `jdcov` (c = the method's c, default 1).

Settings in `config.fairness`: `bins` (histogram bins), `min_size`
(smallest subgroup counted in `js_inter_max`), `intersect` (names).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from algos.fairness import dcov
from algos.fairness import dcov_fairness
from algos.fairness import insurance_data
from algos.fairness import protected
from common.core import sharding as sharding_lib
from common.eval import evaluators

DEFAULTS = dict(bins=20, min_size=20, intersect=("gender", "region"))


def held_out(setup: Any, state: Any) -> dict[str, np.ndarray]:
  """Host `logits`, `y`, `s`, `groups` of the valid held-out rows."""
  out = {k: [] for k in ("logits", "y", "s", "groups", "mask")}
  for batch in setup.eval_batches():
    pred = setup.eval_step(state, batch, setup.hparams)
    out["logits"].append(sharding_lib.gather_to_host(pred["logits"]))
    for k in ("y", "s", "groups", "mask"):
      out[k].append(sharding_lib.gather_to_host(batch[k]))
  cat = {k: np.concatenate(v) for k, v in out.items()}
  keep = cat.pop("mask").astype(bool)
  return {k: v[keep] for k, v in cat.items()}


def disparity(pred: np.ndarray, groups: np.ndarray, names, intersect,
              bins: int, min_size: int) -> dict[str, float]:
  """The JS / UF disparity metrics of `pred` `[n]` (see the module doc)."""
  m = {}
  for j, name in enumerate(names):
    m[f"js_{name}"] = protected.generalised_jsd(pred, groups[:, j], bins)
  m["js_marginal_max"] = max(m[f"js_{name}"] for name in names)
  unknown = set(intersect) - set(names)
  if unknown:
    raise ValueError(f"config.fairness.intersect names {sorted(unknown)}; "
                     f"the protected attributes are {tuple(names)}")
  inter = protected.intersect(*(groups[:, names.index(a)]
                                for a in intersect))
  m["js_inter"] = protected.generalised_jsd(pred, inter, bins)
  m["js_inter_max"] = protected.max_subgroup_js(pred, inter, bins, min_size)
  m["uf_inter"] = protected.unfairness_ratio(pred, inter)
  full = protected.intersect(*(groups[:, j] for j in range(len(names))))
  m["js_full"] = protected.generalised_jsd(pred, full, bins)
  return m


@evaluators.register_evaluator("fairness")
def fairness(setup: Any, state: Any) -> dict[str, float]:
  config = setup.config
  given = config.get("fairness", None)
  settings = {**DEFAULTS, **(given.to_dict() if given is not None else {})}
  method_cfg = config.method[config.method.name]
  task = method_cfg.get("task", "regression")
  c = float(method_cfg.get("c", 1.0))
  data = held_out(setup, state)
  table = insurance_data.table(config)
  logits = jnp.asarray(data["logits"][:, :1])
  pred = np.asarray(dcov_fairness.prediction(logits, task))
  y = data["y"].astype(np.float64)
  if task == "classification":
    f = np.asarray(logits[:, 0], np.float64)
    metrics = {"bce": float(np.mean(np.maximum(f, 0) - f * y
                                    + np.log1p(np.exp(-np.abs(f))))),
               "accuracy": float(np.mean((f > 0) == (y > 0.5)))}
  else:
    metrics = {"mse": float(np.mean((pred - y) ** 2))}
  metrics.update(disparity(pred, data["groups"], list(table.names),
                           tuple(settings["intersect"]),
                           int(settings["bins"]), int(settings["min_size"])))
  dep = _dependence(table.blocks)(jnp.asarray(pred), jnp.asarray(data["s"]),
                                  jnp.float32(c))
  metrics.update({k: float(v) for k, v in dep.items()},
                 pred_std=float(np.std(pred)))
  return metrics


@functools.cache
def _dependence(blocks: tuple[int, ...]):
  """Jitted V-statistics of `pred` `[n]` on the encoded `s` `[n, q]`."""
  @jax.jit
  def fn(pred, s, c):
    parts = protected.split_blocks(s, blocks)
    return {"dcov_marginal": dcov.marginal_dcov2(pred, parts),
            "ccdcov": dcov.ccdcov2(pred, parts),
            "jdcov": dcov.jdcov2_pred(pred, parts, c)}
  return fn

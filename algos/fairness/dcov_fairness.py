"""Distance-covariance fairness regularisation (demographic parity).

Paper: Machine Learning with Multitype Protected Attributes: Intersectional
Fairness through Regularisation. Ho Ming Lee, Katrien Antonio, Benjamin
Avanzi, Lorenzo Marchi, Rui Zhou, 2025. arXiv:2509.08163.
No official code for the paper; the authors' lab companion site
(github.com/agi-lab/beyond-correlation, `python/general/
tune_pg15_parallel.py`) trains with `task_loss + lambda * reg(pred, S)`,
reg = `JdCov_sq_unbiased(pred, S_1, S_2)` (c = 1) or
`sq_dcov_unbiased(pred, concat(S_1, S_2))` (CCdCov), on each mini-batch.

The objective on a batch with model output `f` (one logit per row):

    pred = f                       (task = "regression": MSE to y)
    pred = sigmoid(f)              (task = "classification": BCE to y)
    loss = task_loss + lam * R(pred, S_1, ..., S_k)

with R one of (`algos.fairness.dcov`): "marginal" = sum_i dCov^2(pred, S_i),
"jdcov" = JdCov^2(pred, S_1..S_k; c), "ccdcov" = dCov^2(pred, concat S),
or "none". The protected attributes come encoded in `batch["s"]` `[b, q]`
(binary 0/1, categorical one-hot, continuous standardised; see
`protected.encode`), split into blocks of widths `blocks`. `lam` and `c`
are traced (a sweep does not recompile); `kind`, `task`, `estimator`
("v": V-statistics, the default; "u": the companion's unbiased ones) and
`blocks` are structure.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from algos.fairness import dcov
from algos.fairness import protected
from common import config as config_lib
from common.core import method as method_lib

KINDS = ("none", "marginal", "jdcov", "ccdcov")
TASKS = ("regression", "classification")


def prediction(logits: jax.Array, task: str) -> jax.Array:
  """`[b]` the model's prediction: the output, or its sigmoid."""
  f = logits.astype(jnp.float32)[:, 0]
  return jax.nn.sigmoid(f) if task == "classification" else f


def task_loss(logits: jax.Array, y: jax.Array, mask: jax.Array,
              task: str) -> jax.Array:
  """Masked mean squared error, or binary cross-entropy on the logit."""
  f = logits.astype(jnp.float32)[:, 0]
  y = y.astype(jnp.float32)
  if task == "classification":
    per = jnp.maximum(f, 0) - f * y + jnp.log1p(jnp.exp(-jnp.abs(f)))
  else:
    per = (f - y) ** 2
  return method_lib.masked_mean(per, mask)


def fair_loss(lam: jax.Array, c: jax.Array, logits: jax.Array,
              y: jax.Array, s: jax.Array, mask: jax.Array, *, kind: str,
              task: str, blocks: tuple[int, ...], estimator: str = "v"
              ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """`(task_loss + lam * R, metrics)` of one batch (see the module doc)."""
  base = task_loss(logits, y, mask, task)
  if kind == "none":
    return base, {"task_loss": base}
  pred = prediction(logits, task)
  reg = dcov.regulariser(kind, pred, protected.split_blocks(s, blocks), c,
                         mask, estimator)
  return base + lam * reg, {"task_loss": base, "regulariser": reg}


def make_loss(kind: str, task: str, blocks: tuple[int, ...], estimator: str):
  def loss(hparams, method_state, outputs, batch, params, rng):
    del params, rng
    value, metrics = fair_loss(
        hparams["lam"], hparams["c"], outputs["logits"], batch["y"],
        batch["s"], batch["mask"], kind=kind, task=task, blocks=blocks,
        estimator=estimator)
    return value, metrics, method_state
  return loss


def hparams(method_config, run):
  del run
  return {"lam": float(method_config.get("lam", 0.0)),
          "c": float(method_config.get("c", 1.0))}


RULES = {"lam": config_lib.at_least(0.0),
         "c": config_lib.greater_than(0.0),
         "kind": config_lib.one_of(*KINDS),
         "task": config_lib.one_of(*TASKS),
         "estimator": config_lib.one_of(*dcov.ESTIMATORS)}


@method_lib.register_method("dcov_fairness")
def make(config: dict) -> method_lib.Method:
  """The method of `config.method.dcov_fairness` (kind, task, blocks...)."""
  kind = config.get("kind", "ccdcov")
  task = config.get("task", "regression")
  estimator = config.get("estimator", "v")
  blocks = tuple(int(b) for b in config.get("blocks", ()))
  for key, value, allowed in (("kind", kind, KINDS), ("task", task, TASKS),
                              ("estimator", estimator, dcov.ESTIMATORS)):
    if value not in allowed:
      raise ValueError(f"config.method.dcov_fairness.{key}={value!r}; "
                       f"allowed: {allowed}")
  if kind != "none" and (not blocks or min(blocks) < 1):
    raise ValueError("config.method.dcov_fairness.blocks must list the "
                     "width (>= 1) of each protected attribute's block in "
                     f"batch['s'], got {blocks}")
  return method_lib.Method(
      name="dcov_fairness", init=method_lib.stateless_init,
      loss=make_loss(kind, task, blocks, estimator), hparams=hparams,
      rules=RULES)

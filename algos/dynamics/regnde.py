"""RegNeuralDE: neural ODEs regularised by the solver's own heuristics.

Pal, Ma, Shah, Rackauckas. "Opening the Blackbox: Accelerating Neural
Differential Equations by Regularizing Internal Solver Heuristics". ICML
2021, arXiv:2105.03918. Official code (Julia):
https://github.com/avik-pal/RegNeuralDE.jl

The adaptive solver already computes, at every accepted step j, a local
error estimate E_j (the scaled error norm it compares with 1) and a
stiffness estimate rho_j (Hairer's ||k7 - k6|| / ||y7 - y6||). The paper
adds them to the loss, differentiated through the solver's discrete steps
(discretise-then-optimise):

    ERNODE:  L + lambda_e(epoch) * agg_e_j(E_j |h_j|)
    SRNODE:  L + lambda_s * agg_s_j(rho_j / stability_size)

The paper writes both as sums over steps; the official scripts
(experiments/mnist_node.jl, latent_ode.jl) aggregate the error term with
`mean` and the stiffness term with `maximum`, and anneal the error weight
exponentially, `lambda_0 * exp(-k e)` with `k = log(lambda_0 / lambda_1) /
epochs` (MNIST: 100 -> 10; stiffness 0.1, constant). The aggregations are
static config choices here (`error_agg`, `stiff_agg`), the weights traced.

The model (`algos/dynamics/node_models.py`) runs the solve in its forward
pass and returns the statistics; this method turns them into the loss, so
every arm (plain NODE = both weights 0, ERNODE, SRNODE, STEER through the
model's `steer_b`) goes through the one train step. The solver is
`algos/dynamics/adaptive_rk.py` (why not diffrax: see there).

Differences from the official code: Dormand-Prince 5(4) instead of Tsit5
(stability size 3.3066 instead of 3.5068); step sizes carry no gradient
(as in diffrax); the initial point is not counted as a step (the official
`SavingCallback` also saves at t0).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from algos.baselines import cross_entropy
from common import config as config_lib
from common.core import method as method_lib

TASK_LOSSES = ("cross_entropy", "mse")
ERROR_AGGS = ("mean", "sum")
STIFF_AGGS = ("max", "mean", "sum")


def error_weight(lambda_0: jax.Array, lambda_1: jax.Array,
                 epoch: jax.Array, num_epochs: jax.Array) -> jax.Array:
  """`lambda_0 * (lambda_1 / lambda_0) ** (epoch / num_epochs)` (the
  official exponential decay; 0 when `lambda_0` is 0)."""
  safe0 = jnp.where(lambda_0 > 0, lambda_0, 1.0)
  ratio = jnp.where(lambda_1 > 0, lambda_1, safe0) / safe0
  decay = jnp.exp(jnp.log(ratio) * epoch / jnp.maximum(num_epochs, 1.0))
  return jnp.where(lambda_0 > 0, lambda_0 * decay, 0.0)


def error_regulariser(outputs: dict[str, jax.Array], agg: str) -> jax.Array:
  """R_E from the model's `[b]` solver outputs: sum_j E_j |h_j| (`sum`) or
  its mean over accepted steps (`mean`, the official MNIST/PhysioNet)."""
  total = outputs["reg_error"][0]
  if agg == "sum":
    return total
  return total / jnp.maximum(outputs["error_count"][0], 1.0)


def stiffness_regulariser(outputs: dict[str, jax.Array],
                          agg: str) -> jax.Array:
  """R_S: max (official), mean or sum over accepted steps of
  rho_j / stability_size."""
  if agg == "max":
    return outputs["reg_stiff_max"][0]
  total = outputs["reg_stiff_sum"][0]
  if agg == "sum":
    return total
  return total / jnp.maximum(outputs["error_count"][0], 1.0)


def task_loss(kind: str, outputs: dict[str, jax.Array],
              batch: dict[str, jax.Array]) -> jax.Array:
  """Per-example loss `[b]`: cross-entropy on `label` or the mean squared
  error of the predicted trajectory against `target`."""
  pred = outputs["logits"].astype(jnp.float32)
  if kind == "cross_entropy":
    return cross_entropy.soft_cross_entropy(
        pred, jax.nn.one_hot(batch["label"], pred.shape[-1]))
  err = jnp.square(pred - batch["target"].astype(jnp.float32))
  return jnp.mean(err.reshape(err.shape[0], -1), axis=-1)


@functools.lru_cache(maxsize=None)
def make_apply(kind: str, error_agg: str, stiff_agg: str):
  """The step's `apply`: one forward (with its solve), task loss plus the
  weighted regularisers."""

  def apply(hp, ctx: method_lib.StepContext, params, method_state, batch,
            rng):
    del rng
    outputs, model_state = ctx.forward(params)
    per_example = task_loss(kind, outputs, batch)
    base = (method_lib.masked_mean(per_example, batch["mask"])
            if "mask" in batch else jnp.mean(per_example))
    epoch = jnp.floor(ctx.step / hp["steps_per_epoch"])
    lam_e = error_weight(hp["lambda_error"], hp["lambda_error_final"],
                         epoch, hp["num_epochs"])
    r_e = error_regulariser(outputs, error_agg)
    r_s = stiffness_regulariser(outputs, stiff_agg)
    loss = base + lam_e * r_e + hp["lambda_stiff"] * r_s
    nfe = outputs["nfe"][0]
    new_state = {"nfe_sum": method_state["nfe_sum"] + nfe,
                 "steps": method_state["steps"] + 1.0}
    metrics = {"task_loss": base, "reg_error": r_e, "reg_stiff": r_s,
               "lambda_error": lam_e, "nfe": nfe,
               "finished": outputs["finished"][0]}
    return loss, method_lib.StepAux(metrics, model_state, new_state)

  return apply


def init(rng: jax.Array, ctx: method_lib.InitContext):
  """Running training NFE (forward solves), read by the evaluator."""
  del rng, ctx
  return {"nfe_sum": jnp.zeros((), jnp.float32),
          "steps": jnp.zeros((), jnp.float32)}


def hparams(method_config, run: method_lib.RunInfo):
  """The traced weights, and the epoch clock of the annealing."""
  method_config = {**DEFAULTS, **method_config}
  return {"lambda_error": float(method_config["lambda_error"]),
          "lambda_error_final": float(method_config["lambda_error_final"]),
          "lambda_stiff": float(method_config["lambda_stiff"]),
          "num_epochs": float(run.num_epochs),
          "steps_per_epoch": float(max(run.steps_per_epoch, 1))}


RULES = {"task_loss": config_lib.one_of(*TASK_LOSSES),
         "error_agg": config_lib.one_of(*ERROR_AGGS),
         "stiff_agg": config_lib.one_of(*STIFF_AGGS),
         "lambda_error": config_lib.at_least(0.0),
         "lambda_error_final": config_lib.at_least(0.0),
         "lambda_stiff": config_lib.at_least(0.0)}

DEFAULTS = dict(task_loss="cross_entropy", error_agg="mean", stiff_agg="max",
                lambda_error=0.0, lambda_error_final=0.0, lambda_stiff=0.0)


@method_lib.register_method("regnde")
def make(config: dict) -> method_lib.Method:
  """`regnde` with the static choices of `config` (see DEFAULTS)."""
  c = {**DEFAULTS, **config}
  for key, allowed in (("task_loss", TASK_LOSSES), ("error_agg", ERROR_AGGS),
                       ("stiff_agg", STIFF_AGGS)):
    if c[key] not in allowed:
      raise config_lib.ConfigError(
          f"config.method.regnde.{key}={c[key]!r}; allowed {allowed}")
  return method_lib.Method(
      name="regnde", init=init, hparams=hparams, rules=RULES,
      apply=make_apply(c["task_loss"], c["error_agg"], c["stiff_agg"]))

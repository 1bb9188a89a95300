"""Generalized teacher forcing (GTF), sparse TF and BPTT for the shPLRNN.

Paper: Hess, Monfared, Brenner, Durstewitz, "Generalized Teacher Forcing for
Learning Chaotic Dynamics", ICML 2023 (PMLR 202:13017-13049). Official code:
DurstewitzLab/GTF-shPLRNN (Julia): `src/tf_training/training.jl` (loss,
alpha annealing), `alpha_estimation.jl` (the alpha rules),
`regularization.jl` (latent-model L2), `settings/defaults.json`.

One training step (all through the shared train step; the forcing happens
inside the model's unroll, `algos/dynamics/shplrnn.py`):

* `forcing="gtf"`: the latent state is pulled towards the data's forcing
  signals with weight alpha every step. Loss = MSE of the unforced
  predictions vs x_2..x_T + latent_reg * (|1 - A|^2 + |W1|^2 + |W2|^2 +
  |h1|^2 + |h2|^2). alpha = 0 is plain BPTT on free-running windows.
* `alpha_method` (official `compute_alpha`): "constant" keeps `alpha`;
  otherwise every `alpha_update_interval`-th step an estimate
  alpha* = max(0, 1 - 1/G) is taken from this batch's forcing signals, G
  being
    product_upper_bound:  max over sequences of the geometric mean of the
                          Jacobian spectral norms along the sequence
                          (the paper's adaptive GTF default),
    batch_maximum:        the largest Jacobian spectral norm in the batch,
    arithmetic_mean:      max over sequences of ||mean_t J_t||,
    jacobian_upper_bound: max|A| + ||W1|| ||W2|| (data-free bound),
  and alpha <- alpha* if alpha* > alpha, else gamma alpha + (1 - gamma)
  alpha* (gamma = `alpha_decay`, 0.999): alpha rises at once and decays
  slowly. `alpha` is the initial value (official 1.0).
* `forcing="stf"`: sparse teacher forcing (Mikhaeil et al. 2022), the
  observed units replaced by the data every `tau` steps.

The step also records the global gradient norm (running maximum and mean
in `method_state`) for the bounded-gradient claim.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from algos.dynamics import shplrnn
from common import config as config_lib
from common.core import method as method_lib

ALPHA_METHODS = ("constant", "product_upper_bound", "batch_maximum",
                 "arithmetic_mean", "jacobian_upper_bound")
FORCINGS = ("gtf", "stf")
DEFAULTS = {"forcing": "gtf", "alpha_method": "constant", "alpha": 0.0,
            "alpha_decay": 0.999, "alpha_update_interval": 5, "tau": 16,
            "latent_reg": 1e-5}
RULES = {
    "forcing": config_lib.one_of(*FORCINGS),
    "alpha_method": config_lib.one_of(*ALPHA_METHODS),
    "alpha": config_lib.between(0.0, 1.0),
    "alpha_decay": config_lib.between(0.0, 1.0),
    "alpha_update_interval": config_lib.at_least(1, integer=True),
    "tau": config_lib.at_least(1, integer=True),
    "latent_reg": config_lib.at_least(0.0),
}


def optimal_alpha(norm: jax.Array) -> jax.Array:
  """max(0, 1 - 1/G): the smallest alpha with (1 - alpha) G <= 1."""
  return jnp.maximum(0.0, 1.0 - 1.0 / norm)


def spectral_norms(jac: jax.Array) -> jax.Array:
  """Largest singular values [...] of matrices [..., M, M]."""
  return jnp.linalg.svd(jac, compute_uv=False)[..., 0]


def estimate_norm(p: shplrnn.Params, zhat: jax.Array, method: str,
                  clipped: bool) -> jax.Array:
  """G of `method` from forcing signals zhat [B, T, M] (official rules)."""
  if method == "jacobian_upper_bound":
    return shplrnn.norm_upper_bound(p)
  jac = shplrnn.jacobian(p, zhat, clipped)          # [B, T, M, M]
  if method == "batch_maximum":
    return jnp.max(spectral_norms(jac))
  if method == "product_upper_bound":
    return jnp.max(jnp.exp(jnp.mean(jnp.log(spectral_norms(jac)), axis=1)))
  if method == "arithmetic_mean":
    return jnp.max(spectral_norms(jac.mean(axis=1)))
  raise ValueError(f"alpha_method={method!r}; allowed: {ALPHA_METHODS}")


def anneal(alpha: jax.Array, estimate: jax.Array, decay) -> jax.Array:
  """Official update: jump up to a larger estimate, decay towards a lower."""
  return jnp.where(estimate > alpha, estimate,
                   decay * alpha + (1.0 - decay) * estimate)


def latent_regulariser(p: shplrnn.Params) -> jax.Array:
  """Official `regularize(::AbstractShallowPLRNN)` without the scale."""
  return (jnp.sum((1.0 - p["A"]) ** 2) + sum(
      jnp.sum(p[k] ** 2) for k in ("W1", "W2", "h1", "h2")))


def make_method(cfg: dict[str, Any]) -> method_lib.Method:
  """The GTF / STF / BPTT method of a config section (see `DEFAULTS`)."""
  unknown = set(cfg) - set(DEFAULTS)
  if unknown:
    raise ValueError(f"config.method.gtf has {sorted(unknown)}; allowed: "
                     f"{sorted(DEFAULTS)}")
  cfg = {**DEFAULTS, **cfg}
  forcing, method = cfg["forcing"], cfg["alpha_method"]

  def hparams(method_config, run):
    del run
    c = {**DEFAULTS, **method_config}
    return {k: float(c[k]) for k in ("alpha", "alpha_decay",
                                     "alpha_update_interval", "tau",
                                     "latent_reg")}

  def init(rng, ctx):
    del rng, ctx
    zero = jnp.zeros((), jnp.float32)
    return {"alpha": jnp.asarray(cfg["alpha"], jnp.float32), "norm": zero,
            "max_grad_norm": zero, "sum_grad_norm": zero, "steps": zero}

  def apply(hp, ctx, params, method_state, batch, rng):
    del batch, rng
    x = ctx.inputs                                   # [B, T, N]
    state = dict(method_state)
    if forcing == "gtf":
      alpha = state["alpha"]
      if method != "constant":
        p = jax.lax.stop_gradient(params)
        zhat = shplrnn.forcing_signals(x[:, 1:], p["A"].shape[0], False)
        due = (ctx.step + 1) % hp["alpha_update_interval"].astype(
            jnp.int32) == 0

        def update(_):   # the Jacobian SVDs only on update steps
          norm = estimate_norm(p, zhat, method, ctx.model.clipped)
          return anneal(alpha, optimal_alpha(norm), hp["alpha_decay"]), norm

        alpha, state["norm"] = jax.lax.cond(
            due, update, lambda _: (alpha, state["norm"]), None)
      state["alpha"] = alpha
      outputs, _ = ctx.forward(params, mode="gtf",
                               alpha=jax.lax.stop_gradient(alpha))
    else:
      outputs, _ = ctx.forward(params, mode="stf",
                               tau=hp["tau"].astype(jnp.int32))
    mse = jnp.mean((outputs["predictions"] - x[:, 1:]) ** 2)
    loss = mse + hp["latent_reg"] * latent_regulariser(params)
    metrics = {"mse": mse, "alpha": state.get("alpha", jnp.zeros(()))}
    return loss, method_lib.StepAux(metrics, ctx.model_state, state)

  def value_and_grad(hp, ctx, params, method_state, batch, rng, loss_fn):
    del hp, method_state, batch, rng
    (loss, aux), grads = ctx.value_and_grad(loss_fn, params)
    g = optax.tree.norm(grads)
    state = dict(aux.method_state)
    state["max_grad_norm"] = jnp.maximum(state["max_grad_norm"], g)
    state["sum_grad_norm"] = state["sum_grad_norm"] + g
    state["steps"] = state["steps"] + 1.0
    metrics = {**aux.metrics, "grad_norm": g}
    return (loss, aux._replace(metrics=metrics, method_state=state)), grads

  def predict(hp, ctx, params, method_state, batch):
    del hp, method_state, batch
    return ctx.forward(params, train=False, mode="generate",
                       horizon=PREDICTION_HORIZON)[0]

  return method_lib.Method(
      name="gtf", hparams=hparams, init=init, apply=apply,
      value_and_grad=value_and_grad, predict=predict, rules=RULES)


PREDICTION_HORIZON = 20   # official PE_n


@method_lib.register_method("gtf")
def make(config: dict[str, Any]) -> method_lib.Method:
  return make_method(config)

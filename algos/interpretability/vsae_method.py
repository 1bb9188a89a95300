"""The TopK SAE and vSAE objectives as Method bundles (`topk_sae`, `vsae_topk`).

Paper: Analysis of Variational Sparse Autoencoders, Baker & Li, 2025,
arXiv:2509.22994; credited code (not confirmed official):
https://github.com/ZachData/SPAR-Variational-Sparse-Autoencoders. The
model is `algos.interpretability.vsae.TopKSAE` (registered "topk_sae");
see that module for the equations.

Both methods run the harness's one train-mode forward on the batch's
vectors (`config.data.input_key`, e.g. "x") and keep, in `method_state`,
`since_fired [m]`: examples since each latent last fired (non-zero in the
sparse code), which defines the dead latents of the AuxK loss and the
logged training dead fraction.

Hyperparameters (traced): `auxk_alpha` (Gao et al. 1/32), `dead_window`
(examples without firing before a latent counts as dead); `vsae_topk`
adds `beta` (the KL weight; the credited code's `kl_coeff`) and
`kl_warmup_steps` (linear warm-up of beta; 0 = none). Static: `aux_k`
(latents of the AuxK reconstruction; Gao et al. and the credited code use
`d / 2`), `kl_on` ("all" or "selected").
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from algos.interpretability import vsae
from common import config as config_lib
from common.core import method as method_lib


def auxk_loss(z: jax.Array, dead: jax.Array, residual: jax.Array,
              w_dec: jax.Array, aux_k: int) -> jax.Array:
  """Gao et al.'s AuxK loss (0 when no latent is dead).

  Args:
    z: pre-TopK latents `[b, m]`.
    dead: bool `[m]`.
    residual: `x - x_hat` `[b, d]` (detached here).
    w_dec: decoder rows `[m, d]`.
    aux_k: dead latents used per example (at most `m`).

  Returns:
    `||e - e_hat||^2 / ||e - mean(e)||^2` (both summed over d, mean over b).
  """
  residual = jax.lax.stop_gradient(residual)
  scores = jnp.where(dead[None], jnp.abs(z), -jnp.inf)
  chosen = vsae.topk_mask(scores, min(aux_k, z.shape[-1])) & dead[None]
  e_hat = jnp.where(chosen, z, 0.0) @ w_dec
  l2 = jnp.mean(jnp.sum((residual - e_hat) ** 2, -1))
  denom = jnp.mean(jnp.sum((residual - residual.mean(0)) ** 2, -1))
  return jnp.where(jnp.any(dead), l2 / (denom + 1e-8), 0.0)


def kl_term(outputs: dict[str, jax.Array], kl_on: str) -> jax.Array:
  """`sum_j KL(N(mu_j, sigma_j^2) || N(0, 1))`, mean over the batch, on all
  latents or on the TopK-selected ones."""
  kl = vsae.gaussian_kl(outputs["mu"], outputs["log_var"])
  if kl_on == "selected":
    kl = jnp.where(outputs["selected"], kl, 0.0)
  return jnp.mean(jnp.sum(kl, -1))


def sae_objective(hp: dict[str, jax.Array], outputs: dict[str, jax.Array],
                  x: jax.Array, w_dec: jax.Array, since_fired: jax.Array,
                  step: jax.Array, *, aux_k: int, variational: bool,
                  kl_on: str = "all"
                  ) -> tuple[jax.Array, dict[str, jax.Array], jax.Array]:
  """`(loss, metrics, new since_fired)` of one batch; see the module doc."""
  residual = x - outputs["recon"]
  recon = jnp.mean(jnp.sum(residual ** 2, -1))
  active = outputs["features"] != 0
  since = jnp.where(jnp.any(active, 0), 0,
                    since_fired + x.shape[0]).astype(since_fired.dtype)
  dead = since >= hp["dead_window"]
  aux = auxk_loss(outputs["z"], dead, residual, w_dec, aux_k)
  loss = recon + hp["auxk_alpha"] * aux
  metrics = {"recon": recon, "auxk": aux,
             "dead_frac": jnp.mean(dead.astype(jnp.float32)),
             "l0": jnp.mean(jnp.sum(active, -1).astype(jnp.float32))}
  if variational:
    kl = kl_term(outputs, kl_on)
    warm = jnp.where(hp["kl_warmup_steps"] > 0,
                     jnp.minimum(1.0, step / jnp.maximum(
                         hp["kl_warmup_steps"], 1.0)), 1.0)
    loss = loss + hp["beta"] * warm * kl
    metrics.update(kl=kl, kl_weight=hp["beta"] * warm,
                   mean_var=jnp.mean(jnp.exp(outputs["log_var"])))
  return loss, metrics, since


def _make(name: str, variational: bool,
          method_config: dict[str, Any]) -> method_lib.Method:
  cfg = dict(method_config)
  names = ("auxk_alpha", "dead_window") + (
      ("beta", "kl_warmup_steps") if variational else ())
  aux_k = cfg.get("aux_k", 32)
  kl_on = cfg.get("kl_on", "all")
  if variational and kl_on not in vsae.KL_ON:
    raise config_lib.ConfigError(
        f"config.method.{name}.kl_on={kl_on!r}; allowed: {list(vsae.KL_ON)}")

  def hparams(method_cfg, run):
    del run
    return {k: float(method_cfg[k]) for k in names}

  def init(rng, ctx):
    del rng
    return {"since_fired": jnp.zeros(ctx.params["w_dec"].shape[0],
                                     jnp.int32)}

  def apply(hp, ctx, params, method_state, batch, rng):
    del batch, rng
    outputs, model_state = ctx.forward(params)
    if variational and "log_var" not in outputs:
      raise ValueError(f"method {name!r} needs a variational model: set "
                       "config.model.kwargs.variance to 'learned' or 'unit'")
    w_dec = vsae.decoder_rows(params, ctx.model.normalize_decoder)
    loss, metrics, since = sae_objective(
        hp, outputs, ctx.inputs.astype(jnp.float32), w_dec,
        method_state["since_fired"], ctx.step.astype(jnp.float32),
        aux_k=aux_k, variational=variational, kl_on=kl_on)
    return loss, method_lib.StepAux(metrics, model_state,
                                    {"since_fired": since})

  rules = {"auxk_alpha": config_lib.at_least(0.0),
           "dead_window": config_lib.at_least(1),
           "aux_k": config_lib.at_least(1, integer=True)}
  if variational:
    rules.update(beta=config_lib.at_least(0.0),
                 kl_warmup_steps=config_lib.at_least(0),
                 kl_on=config_lib.one_of(*vsae.KL_ON))
  return method_lib.Method(name=name, hparams=hparams, init=init,
                           apply=apply, rules=rules)


@method_lib.register_method("topk_sae")
def make_topk_sae(method_config: dict[str, Any]) -> method_lib.Method:
  """TopK SAE: reconstruction + `auxk_alpha` * AuxK."""
  return _make("topk_sae", False, method_config)


@method_lib.register_method("vsae_topk")
def make_vsae_topk(method_config: dict[str, Any]) -> method_lib.Method:
  """TopK vSAE: reconstruction + beta * w(t) * KL + `auxk_alpha` * AuxK."""
  return _make("vsae_topk", True, method_config)

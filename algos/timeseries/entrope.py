"""EntroPE: the two training stages as one Method on the shared train step.

Paper: EntroPE: Entropy-Guided Dynamic Patch Encoder for Time Series
Forecasting, Abeywickrama et al. 2025, arXiv:2509.26157. Official code:
github.com/Sachithx/EntroPE (`train_entropy_model.py` trains the entropy
model first; `run_longExp.py` then trains the forecaster with that model
frozen inside the patcher).

The network is the registered model "entrope" (`entrope_model.py`), which
holds the entropy model as its `entropy_model` submodule. The stage is
static structure (`config.method.entrope.stage`):

* "entropy": next-token cross-entropy of the entropy model on the
  quantised (RevIN-normalised) contexts; only `entropy_model` trains.
* "forecast": MSE of the forecast (official `--loss mse`); everything but
  `entropy_model` trains, the entropy model only places boundaries.

Experiments run the two stages with the `finetune` protocol: its pretrain
run is the "entropy" stage (`pretrain.overrides`), and the forecaster
starts from its parameters. `quantile` (the boundary threshold, official
`patching_threshold`) is a traced hyperparameter: sweeping it never
recompiles.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from common import config as config_lib
from common.core import method as method_lib

STAGES = ("entropy", "forecast")
DEFAULTS = dict(stage="forecast", quantile=0.95)
RULES = {"quantile": config_lib.between(0.0, 1.0),
         "stage": config_lib.one_of(*STAGES)}


def entropy_loss(logits: jax.Array, tokens: jax.Array):
  """Mean next-token cross-entropy: logits [N, L, V] at t predict t+1."""
  ce = optax.softmax_cross_entropy_with_integer_labels(
      logits[:, :-1].astype(jnp.float32), tokens[:, 1:])
  return ce.mean()


def forecast_errors(forecast: jax.Array, target: jax.Array):
  """(MSE, MAE) over every step and channel, `[b, H, C]` each."""
  err = forecast.astype(jnp.float32) - target
  return jnp.mean(err**2), jnp.mean(jnp.abs(err))


def _only_entropy_model(train_it: bool):
  def mask(params):
    return {k: jax.tree.map(lambda _: (k == "entropy_model") == train_it, v)
            for k, v in params.items()}
  return mask


@method_lib.register_method("entrope")
def make(method_config: dict[str, Any]) -> method_lib.Method:
  cfg = {**DEFAULTS, **method_config}
  unknown = set(cfg) - set(DEFAULTS)
  if unknown:
    raise config_lib.ConfigError(
        f"config.method.entrope has {sorted(unknown)}; allowed: "
        f"{sorted(DEFAULTS)}")
  stage = cfg["stage"]
  if stage not in STAGES:
    raise config_lib.ConfigError(
        f"config.method.entrope.stage={stage!r}; allowed: {STAGES}")

  def hparams(method_cfg, run):
    del run
    return {"quantile": float(method_cfg.get("quantile",
                                             DEFAULTS["quantile"]))}

  def apply(hp, ctx, params, method_state, batch, rng):
    del rng
    if stage == "entropy":
      out, model_state = ctx.forward(params, mode="entropy")
      loss = entropy_loss(out["entropy_logits"], out["tokens"])
      metrics = {"entropy_ce": loss, "perplexity": jnp.exp(loss)}
    else:
      out, model_state = ctx.forward(params, quantile=hp["quantile"])
      loss, mae = forecast_errors(out["forecast"], batch["y"])
      metrics = {"mse": loss, "mae": mae,
                 "num_patches": out["num_patches"].mean()}
    return loss, method_lib.StepAux(metrics, model_state, method_state)

  def predict(hp, ctx, params, method_state, batch):
    del method_state, batch
    if stage == "entropy":
      return ctx.forward(params, train=False, mode="entropy")[0]
    return ctx.forward(params, train=False, quantile=hp["quantile"])[0]

  return method_lib.Method(
      name="entrope", hparams=hparams, apply=apply, predict=predict,
      trainable=_only_entropy_model(stage == "entropy"), rules=RULES)

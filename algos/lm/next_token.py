"""Next-token prediction: the language-model training objective.

Not one paper's method: the objective every LM paper of the repo trains
or fine-tunes with (cce, hyperfitting, token_crisis, ...). The loss is the
mean, over the tokens whose `loss_mask` is 1, of the per-token negative
log-likelihood `algos.lm.losses.<loss>(features, unembedding, targets)`,
computed from the model's final features and its unembedding matrix, so a
loss that never builds the `[N, V]` logits (CCE, Wijmans et al. 2024,
arXiv:2411.09009, apple/ml-cross-entropy) replaces the naive one by name.

Batches are packed token rows (`common.data.text.packing`): `tokens`,
`targets`, `loss_mask`, `segment_ids` and `positions` `[B, T]` (the last
two keep attention inside each document), optionally `target_bytes`.

Metrics (`method/...`): `perplexity` = exp(loss), `bits_per_token` =
loss / ln 2, and `bits_per_byte` = summed nats / ln 2 / the target bytes
when the batch has `target_bytes`. With `train.micro_batches > 1` they are
means over micro-batches weighted by token counts (the loss is exact; the
other two then are close to, not equal to, their global values).
Evaluation (`Method.predict`) returns `token_nll [B, T]` (which the `lm`
evaluator, `common.eval.language`, sums over the held-out split) and the
final hidden `features [B, T, D]` (read by `hidden_rank`).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from algos.lm import losses
from common import config as config_lib
from common.core import method as method_lib
from common.models import transformer as transformer_lib

_LN2 = math.log(2.0)
# Batch entries the transformer reads besides the tokens.
_MODEL_KEYS = ("segment_ids", "positions")


def token_nll(ctx: method_lib.StepContext, params: Any, batch: dict,
              *, loss: str, softcap: jax.Array | None, train: bool
              ) -> tuple[jax.Array, Any]:
  """`(nll [B, T] float32, new model state)` of the batch's targets."""
  nll, model_state, _ = nll_and_features(ctx, params, batch, loss=loss,
                                         softcap=softcap, train=train)
  return nll, model_state


def nll_and_features(ctx: method_lib.StepContext, params: Any, batch: dict,
                     *, loss: str, softcap: jax.Array | None, train: bool
                     ) -> tuple[jax.Array, Any, jax.Array]:
  """`(nll [B, T] float32, new model state, features [B, T, D])`.

  Args:
    ctx: the step's context (its `inputs` are the tokens `[B, T]`).
    params: the model parameters.
    batch: the token batch.
    loss: a registered per-token loss (`algos.lm.losses`).
    softcap: final-logit soft-capping value (the model's), or None.
    train: train mode (dropout on).
  """
  kwargs = {k: batch[k] for k in _MODEL_KEYS if k in batch}
  outputs, model_state = ctx.forward(params, train=train,
                                     compute_logits=False, **kwargs)
  features = outputs["features"]                       # [B, T, D]
  b, t, d = features.shape
  nll = losses.get_loss(loss)(
      features.reshape(b * t, d), transformer_lib.unembedding(params),
      batch["targets"].reshape(b * t), softcap=softcap)
  return nll.reshape(b, t).astype(jnp.float32), model_state, features


def lm_metrics(nll: jax.Array, batch: dict) -> dict[str, jax.Array]:
  """Loss, perplexity and bits per token (and byte) of masked `nll`."""
  mask = batch["loss_mask"].astype(jnp.float32)
  loss = method_lib.masked_mean(nll, mask)
  metrics = {"loss": loss, "perplexity": jnp.exp(loss),
             "bits_per_token": loss / _LN2}
  if "target_bytes" in batch:
    nbytes = jnp.sum(batch["target_bytes"].astype(jnp.float32) * mask)
    metrics["bits_per_byte"] = (jnp.sum(nll * mask) / _LN2
                                / jnp.maximum(nbytes, 1.0))
  return metrics


def _softcap(model: Any) -> float | None:
  """The model's final-logit soft-capping (Gemma 2), so the loss sees the
  logits the model would return."""
  cap = getattr(getattr(model, "config", None), "logit_softcap", 0.0)
  return float(cap) if cap else None


@method_lib.register_method("next_token")
def make(method_config: dict[str, Any]) -> method_lib.Method:
  """The LM method; config key `loss`: a registered per-token loss
  ("naive", "cce", ...)."""
  unknown = set(method_config) - {"loss"}
  if unknown:
    raise config_lib.ConfigError(
        f"config.method.next_token has {sorted(unknown)}; it reads ['loss']")
  loss_name = method_config.get("loss", "naive")
  if loss_name not in losses.LOSSES:
    raise config_lib.ConfigError(
        f"config.method.next_token.loss={loss_name!r} is not a registered "
        f"LM loss; registered: {losses.loss_names()}")

  def apply(hp, ctx, params, method_state, batch, rng):
    del hp, rng
    nll, model_state = token_nll(ctx, params, batch, loss=loss_name,
                                 softcap=_softcap(ctx.model), train=True)
    metrics = lm_metrics(nll, batch)
    return metrics["loss"], method_lib.StepAux(metrics, model_state,
                                               method_state)

  def predict(hp, ctx, params, method_state, batch):
    del hp, method_state
    nll, _, features = nll_and_features(ctx, params, batch, loss=loss_name,
                                        softcap=_softcap(ctx.model),
                                        train=False)
    # Evaluators ask for what they read (`output_keys`); the rest is
    # dropped inside the jitted step.
    return {"token_nll": nll, "features": features}

  return method_lib.Method(name="next_token", hparams=lambda cfg, run: {},
                           apply=apply, predict=predict)

"""Entropy-guided attention: attention entropy and its regulariser.

Paper: Entropy-Guided Attention for Private LLMs, N. K. Jha and B. Reagen,
AAAI 2025 PPAI workshop, arXiv:2501.03489.
Official code: https://github.com/Nandan91/entropy-guided-attention-llm
(`entropy_regularization.py`, `EntropyRegularization`, commit 728944d).

Removing a transformer's nonlinearities (LayerNorm, the FFN activation:
the "softmax-only" model, `TransformerConfig(norm="none", ffn="linear")`)
leads to entropy collapse in deep layers and entropic overload (near-
uniform heads) in early ones. The fix: learnable per-head attention
temperatures (`learn_temperature`), FFN weight / spectral normalisation
(`ffn_norm`) and an entropy regulariser that pulls each head's attention
entropy towards a learnable per-head threshold, ignoring deviations
within a tolerance margin:

  H_{l,h}(b, t) = -sum_s A log(A + 1e-9),        E_max = log(context)
  pen = (H - theta_{l,h} E_max)^2  where |H - theta E_max| > tol E_max
  L_reg = coeff * mean_l mean_h sum_{b,t} pen.

As the official code, the penalty is summed over batch rows and query
positions, then averaged over heads and layers; `E_max` is the log of the
key length. The thresholds `theta` are parameters (`params
["entropy_threshold"]["layer_i"]` [H], one vector per layer), trained by
the same optimiser; they are not in the official repo's code (its model
file is not released), so their init `threshold_init` is ours.

Method `entropy_guided_attention`: next-token loss + `reg_coeff` L_reg
from the same forward pass (`return_attention`); `reg_coeff = 0` is plain
next-token training. Its `predict` also returns each row's summed
normalised attention entropy per layer and head, which the evaluator
`attention_entropy` turns into the claim's numbers (collapse / overload).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from algos.lm import losses
from algos.lm import next_token
from common import config as config_lib
from common.core import method as method_lib
from common.core import sharding as sharding_lib
from common.eval import evaluators
from common.models import transformer as transformer_lib

_EPS = 1e-9            # the official log offset
_KEYS = ("reg_coeff", "tolerance", "threshold_init")


def attention_entropy(probs: jax.Array) -> jax.Array:
  """`[B, H, T]` entropy (nats) of attention rows `probs` `[B, H, T, S]`,
  `-sum p log(p + 1e-9)` as the official `compute_entropy`."""
  return -jnp.sum(probs * jnp.log(probs + _EPS), axis=-1)


def entropy_regularizer(attentions: Sequence[jax.Array],
                        thresholds: jax.Array, tolerance: jax.Array | float,
                        context_size: int | None = None,
                        query_mask: jax.Array | None = None) -> jax.Array:
  """The entropy penalty (without `loss_coeff`), as the official one.

  Args:
    attentions: L x `[B, H, T, S]` attention probabilities.
    thresholds: `[L, H]` threshold weights (fractions of the max entropy).
    tolerance: the tolerance margin as a fraction of the max entropy.
    context_size: defines the max entropy `log(context_size)`; default S.
    query_mask: optional `[B, T]` 0/1 weights of the query rows counted
      (padding rows out); default all rows (the official).

  Returns:
    scalar: mean over layers and heads of the summed squared deviations
    beyond the margin.
  """
  max_entropy = math.log(context_size or attentions[0].shape[-1])
  margin = tolerance * max_entropy
  total = 0.0
  for layer, probs in enumerate(attentions):
    dev = attention_entropy(probs.astype(jnp.float32)) - (
        thresholds[layer][None, :, None] * max_entropy)       # [B, H, T]
    pen = jnp.square(jnp.where(jnp.abs(dev) > margin, dev, 0.0))
    if query_mask is not None:
      pen = pen * query_mask[:, None, :].astype(pen.dtype)
    total = total + jnp.sum(pen) / probs.shape[1]
  return total / len(attentions)


def normalized_entropy_sums(attentions: Sequence[jax.Array],
                            query_mask: jax.Array, visible: jax.Array
                            ) -> tuple[jax.Array, jax.Array]:
  """Per row, the summed normalised entropy of each layer and head.

  A query's entropy is divided by `log(k)`, `k` its number of visible keys,
  so 1 = uniform over what it may see and 0 = one key; queries seeing one
  key only are not counted.

  Args:
    attentions: L x `[B, H, T, S]`.
    query_mask: `[B, T]` rows counted (non-padding tokens).
    visible: `[B, T]` keys each query may attend (position in its
      document + 1).

  Returns:
    (`[B, L, H]` sums over counted queries, `[B]` number of them).
  """
  sums = []
  counted = query_mask.astype(jnp.float32) * (visible > 1)
  denom = jnp.log(jnp.maximum(visible, 2).astype(jnp.float32))
  for probs in attentions:
    ent = attention_entropy(probs.astype(jnp.float32)) / denom[:, None]
    sums.append(jnp.sum(ent * counted[:, None], axis=-1))      # [B, H]
  return jnp.stack(sums, axis=1), jnp.sum(counted, axis=-1)


def init_thresholds(num_layers: int, num_heads: int,
                    value: float) -> dict[str, jax.Array]:
  """`{"layer_i": [H]}` thresholds, all `value` (1-D: no weight decay)."""
  return {f"layer_{i}": jnp.full((num_heads,), value, jnp.float32)
          for i in range(num_layers)}


def _forward(ctx, params, batch, *, train: bool, softcap):
  """(nll [B, T], attentions, model state) of one forward pass."""
  model_params = {k: v for k, v in params.items()
                  if k != "entropy_threshold"}
  kwargs = {k: batch[k] for k in ("segment_ids", "positions") if k in batch}
  out, model_state = ctx.forward(model_params, train=train,
                                 compute_logits=False, return_attention=True,
                                 **kwargs)
  feats = out["features"]
  b, t, d = feats.shape
  nll = losses.get_loss("naive")(
      feats.reshape(b * t, d), transformer_lib.unembedding(model_params),
      batch["targets"].reshape(b * t), softcap=softcap)
  return nll.reshape(b, t).astype(jnp.float32), out["attention"], model_state


def _queries(batch: dict) -> tuple[jax.Array, jax.Array]:
  """(`[B, T]` counted query rows, `[B, T]` keys visible to each)."""
  shape = batch["targets"].shape
  mask = (batch["segment_ids"] > 0 if "segment_ids" in batch
          else jnp.ones(shape, bool)).astype(jnp.float32)
  pos = batch.get("positions", jnp.broadcast_to(jnp.arange(shape[1]), shape))
  return mask, pos + 1


@method_lib.register_method("entropy_guided_attention")
def make(method_config: dict[str, Any]) -> method_lib.Method:
  """Config keys: `reg_coeff` (official 1e-5), `tolerance` (official
  0.2), `threshold_init` (initial thresholds as a fraction of the max
  entropy; ours)."""
  unknown = set(method_config) - set(_KEYS)
  if unknown:
    raise config_lib.ConfigError(
        f"config.method.entropy_guided_attention has {sorted(unknown)}; "
        f"it reads {list(_KEYS)}")
  cfg = {"reg_coeff": 1e-5, "tolerance": 0.2, "threshold_init": 0.5,
         **method_config}
  if not 0.0 <= cfg["threshold_init"] <= 1.0 or cfg["tolerance"] < 0:
    raise config_lib.ConfigError(
        "config.method.entropy_guided_attention: threshold_init="
        f"{cfg['threshold_init']} must be in [0, 1] and tolerance="
        f"{cfg['tolerance']} >= 0")

  def hparams(method_cfg, run):
    del method_cfg, run
    return {"reg_coeff": float(cfg["reg_coeff"]),
            "tolerance": float(cfg["tolerance"])}

  def init(rng, ctx):
    del rng
    c = ctx.model.config
    params = dict(ctx.params)
    if "entropy_threshold" not in params:
      params["entropy_threshold"] = init_thresholds(
          c.num_layers, c.num_heads, float(cfg["threshold_init"]))
    return method_lib.InitOutput(method_state={}, params=params)

  def apply(hp, ctx, params, method_state, batch, rng):
    del rng
    softcap = next_token._softcap(ctx.model)
    nll, attn, model_state = _forward(ctx, params, batch, train=True,
                                      softcap=softcap)
    metrics = next_token.lm_metrics(nll, batch)
    th = params["entropy_threshold"]
    thresholds = jnp.stack([th[f"layer_{i}"] for i in range(len(attn))])
    reg = entropy_regularizer(attn, thresholds, hp["tolerance"])
    sums, count = normalized_entropy_sums(attn, *_queries(batch))
    per_layer = jnp.sum(sums, axis=(0, 2)) / jnp.maximum(
        jnp.sum(count), 1.0) / sums.shape[2]
    metrics.update({"entropy_reg": reg, "ce": metrics["loss"]})
    metrics.update({f"entropy/layer_{i}": per_layer[i]
                    for i in range(len(attn))})
    loss = metrics["loss"] + hp["reg_coeff"] * reg
    metrics["loss"] = loss
    return loss, method_lib.StepAux(metrics, model_state, method_state)

  def predict(hp, ctx, params, method_state, batch):
    del hp, method_state
    nll, attn, _ = _forward(ctx, params, batch, train=False,
                            softcap=next_token._softcap(ctx.model))
    sums, count = normalized_entropy_sums(attn, *_queries(batch))
    return {"token_nll": nll, "entropy_sums": sums, "entropy_count": count}

  return method_lib.Method(name="entropy_guided_attention", hparams=hparams,
                           init=init, apply=apply, predict=predict)


# A head is overloaded when its mean normalised entropy is above OVERLOAD
# (near-uniform attention), collapsed when below COLLAPSE (near one-hot).
OVERLOAD, COLLAPSE = 0.8, 0.2


@jax.jit
def _eval_sums(out: dict, batch: dict) -> tuple[jax.Array, jax.Array]:
  """([nats, tokens, bytes], [L, H] entropy sums + count) of a batch."""
  mask = batch["loss_mask"].astype(jnp.float32)
  rows = batch.get("mask", jnp.ones(mask.shape[:1])).astype(jnp.float32)
  mask = mask * rows[:, None]
  nbytes = (jnp.sum(batch["target_bytes"] * mask) if "target_bytes" in batch
            else jnp.float32(0))
  lm = jnp.stack([jnp.sum(out["token_nll"] * mask), jnp.sum(mask), nbytes])
  ent = jnp.sum(out["entropy_sums"] * rows[:, None, None], axis=0)
  return lm, ent, jnp.sum(out["entropy_count"] * rows)


def head_summary(entropy: np.ndarray) -> dict[str, float]:
  """Claim metrics of `[L, H]` mean normalised head entropies: per layer
  means, overloaded share of the early half of the layers, collapsed share
  of the deep half, and both over all heads."""
  num_layers = entropy.shape[0]
  half = max(num_layers // 2, 1)
  out = {f"entropy/layer_{i}": float(entropy[i].mean())
         for i in range(num_layers)}
  out.update({
      "overload_early": float((entropy[:half] > OVERLOAD).mean()),
      "collapse_deep": float((entropy[num_layers - half:] < COLLAPSE).mean()),
      "overload_all": float((entropy > OVERLOAD).mean()),
      "collapse_all": float((entropy < COLLAPSE).mean()),
      "entropy/head_std": float(entropy.std())})
  return out


@evaluators.register_evaluator("attention_entropy")
def evaluate(setup: Any, state: Any) -> dict[str, float]:
  """The `lm` evaluator's metrics plus the attention-entropy summary
  (`head_summary`) over the eval split; needs this method's `predict`."""
  lm_total, ent_total, count = np.zeros(3, np.float64), 0.0, 0.0
  keys = ("token_nll", "entropy_sums", "entropy_count")
  for batch in setup.eval_batches():
    out = setup.eval_step(state, batch, setup.hparams, output_keys=keys)
    sub = {k: batch[k] for k in ("loss_mask", "mask", "target_bytes")
           if k in batch}
    lm, ent, n = (sharding_lib.gather_to_host(x)
                  for x in _eval_sums(out, sub))
    lm_total += lm
    ent_total = ent_total + np.asarray(ent, np.float64)
    count += float(n)
  nats, tokens, nbytes = lm_total
  loss = nats / max(tokens, 1.0)
  result = {"loss": loss, "perplexity": math.exp(min(loss, 700.0)),
            "bits_per_token": loss / math.log(2.0), "tokens": tokens}
  if nbytes > 0:
    result["bits_per_byte"] = nats / math.log(2.0) / nbytes
  result.update(head_summary(ent_total / max(count, 1.0)))
  return result

"""T-JEPA: augmentation-free self-supervised learning for tabular data.

Paper: H. Thimonier, J. L. De Melo Costa, F. Popineau, A. Rimmel, B.-L.
Doan, "T-JEPA: Augmentation-Free Self-Supervised Learning for Tabular
Data", ICLR 2025, arXiv 2410.05016 (id recalled, not checked offline).
Official code: github.com/jose-melo/t-jepa (PyTorch; read, not copied):
`src/mask.py` (`MaskCollator`), `src/train.py` (`Trainer.train`: the loss
and the EMA update), `run.py` (the momentum schedule), networks in
`algos/ssl/tjepa_net.py`.

One step (official `Trainer.train`, transformer predictor):

  h = sg(target_encoder(x))[targets]          # [b, P, Nt, H]
  z = context_encoder(x[context])             # context tokens only
  L = mean (predictor(z, context pos, target pos) - h)^2

then, after the optimizer step, `target <- m target + (1 - m) context`
with m linear from `ema_start` to `ema_end` over `ipe_scale x` the run's
steps (official `momentum_scheduler`).

Masks (official `MaskCollator.__call__`): per batch, counts
`n_ctx = min_c + round((max_c - min_c) U)`, `n_tgt` alike, redrawn until
`n_ctx + n_tgt <= D`, with `min_c = round(D min_ctx_share)` etc. (Python's
rounding, as the official constructor); per example, the context is a
random `n_ctx`-subset of the features and each of the `num_preds` targets a
random `n_tgt`-subset of the rest (targets may overlap each other, never the
context). Shapes are static: index arrays are padded to `max_c` / `max_t`
with validity masks (attention keys and loss ignore padding), which gives
the official variable-length computation.

Regularisation tokens (official `n_cls_tokens`): R learned tokens before the
D feature tokens. `indexing="features"` (default, the paper's description)
draws masks over the D features and always feeds the R tokens to the
context encoder (they are never targets). `indexing="official"` uses the
official code's indices as they are: mask indices in [0, D) address the
token sequence [R reg tokens, D features] directly, so a reg token is a
context or target token when its index is drawn and the last R features are
never masked in (the parity test reproduces the official loss this way).

`method_state = {"target": encoder params}`; `predict` returns the target
encoder's flattened embedding as "features" (the official downstream input,
`OnlineDataset(target_encoder)`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from common import config as config_lib
from common.core import method as method_lib

INDEXING = ("features", "official")


def mask_bounds(num_features: int, min_ctx_share: float,
                max_ctx_share: float, min_tgt_share: float,
                max_tgt_share: float) -> tuple[int, int, int, int]:
  """`(min_ctx, max_ctx, min_tgt, max_tgt)` feature counts, as the official
  `MaskCollator.__init__` (Python `round`), with its checks."""
  min_c, max_c = round(num_features * min_ctx_share), round(
      num_features * max_ctx_share)
  min_t, max_t = round(num_features * min_tgt_share), round(
      num_features * max_tgt_share)
  if not 0 < min_c < max_c:
    raise config_lib.ConfigError(
        f"t_jepa masks: context counts round({num_features} x shares) = "
        f"[{min_c}, {max_c}]; need 0 < min < max (raise the shares)")
  if not 0 < min_t <= max_t:
    raise config_lib.ConfigError(
        f"t_jepa masks: target counts [{min_t}, {max_t}]; need 0 < min <= max")
  if min_c + min_t > num_features:
    raise config_lib.ConfigError(
        f"t_jepa masks: min context {min_c} + min target {min_t} > "
        f"{num_features} features; lower the min shares")
  return min_c, max_c, min_t, max_t


def sample_masks(rng: jax.Array, batch: int, num_features: int,
                 bounds: tuple[int, int, int, int], num_preds: int,
                 reg_tokens: int, indexing: str = "features"
                 ) -> dict[str, jax.Array]:
  """Context and target sequence positions of one batch.

  Returns:
    `context_pos [b, Nc]`, `context_valid [b, Nc]` (Nc = max_c, + R with
    `indexing="features"`), `target_pos [b, P, Nt]`, `target_valid`
    (Nt = max_t), `n_ctx`, `n_tgt` (int32 scalars).
  """
  min_c, max_c, min_t, max_t = bounds
  k_count, k_ctx, k_tgt = jax.random.split(rng, 3)

  def draw(carry):
    key, _, _ = carry
    key, sub = jax.random.split(key)
    u = jax.random.uniform(sub, (2,))
    return (key, min_c + jnp.round((max_c - min_c) * u[0]).astype(jnp.int32),
            min_t + jnp.round((max_t - min_t) * u[1]).astype(jnp.int32))

  big = jnp.int32(num_features + 1)
  _, n_ctx, n_tgt = jax.lax.while_loop(
      lambda c: c[1] + c[2] > num_features, draw, (k_count, big, big))
  perm = jnp.argsort(jax.random.uniform(k_ctx, (batch, num_features)), -1)
  ctx = perm[:, :max_c]
  ctx_valid = jnp.arange(max_c)[None] < n_ctx
  in_ctx = jnp.zeros((batch, num_features)).at[
      jnp.arange(batch)[:, None], ctx].max(ctx_valid.astype(jnp.float32))
  scores = jax.random.uniform(k_tgt, (batch, num_preds, num_features))
  tgt = jnp.argsort(scores + 2.0 * in_ctx[:, None], -1)[..., :max_t]
  tgt_valid = jnp.broadcast_to(jnp.arange(max_t) < n_tgt, tgt.shape)
  ctx_valid = jnp.broadcast_to(ctx_valid, ctx.shape)
  if indexing == "features":
    reg = jnp.broadcast_to(jnp.arange(reg_tokens), (batch, reg_tokens))
    ctx = jnp.concatenate([reg, ctx + reg_tokens], 1)
    ctx_valid = jnp.concatenate(
        [jnp.ones((batch, reg_tokens), bool), ctx_valid], 1)
    tgt = tgt + reg_tokens
  return {"context_pos": ctx.astype(jnp.int32), "context_valid": ctx_valid,
          "target_pos": tgt.astype(jnp.int32), "target_valid": tgt_valid,
          "n_ctx": n_ctx, "n_tgt": n_tgt}


def jepa_loss(prediction: jax.Array, target_tokens: jax.Array,
              target_pos: jax.Array, target_valid: jax.Array) -> jax.Array:
  """Mean squared error over the valid target tokens (official `MSELoss`).

  Args:
    prediction: `[b, P, Nt, H]`. target_tokens: `[b, S, H]` the target
    encoder's output (gradient stopped here). target_pos, target_valid:
    `[b, P, Nt]`.
  """
  tokens = jax.lax.stop_gradient(target_tokens)
  b, p, nt = target_pos.shape
  h = jnp.take_along_axis(tokens, target_pos.reshape(b, p * nt)[..., None],
                          1).reshape(b, p, nt, -1)
  w = target_valid.astype(prediction.dtype)[..., None]
  sq = jnp.sum(w * jnp.square(prediction - h))
  return sq / (jnp.sum(w) * prediction.shape[-1])


def momentum_at(step: jax.Array, start: jax.Array, end: jax.Array,
                total: jax.Array) -> jax.Array:
  """The official linear EMA schedule: `start + step (end - start) / total`.
  """
  return start + step.astype(jnp.float32) * (end - start) / total


def embedding_std(tokens: jax.Array) -> dict[str, jax.Array]:
  """Per-dimension std over the batch of `[b, S, H]` embeddings: mean and
  min over the S x H dimensions (collapse: all near 0)."""
  std = jnp.std(tokens.reshape(tokens.shape[0], -1), axis=0)
  return {"emb_std_mean": jnp.mean(std), "emb_std_min": jnp.min(std)}


RULES = {
    "indexing": config_lib.one_of(*INDEXING),
    "num_preds": config_lib.at_least(1, integer=True),
    "min_ctx_share": config_lib.between(0.0, 1.0),
    "max_ctx_share": config_lib.between(0.0, 1.0),
    "min_tgt_share": config_lib.between(0.0, 1.0),
    "max_tgt_share": config_lib.between(0.0, 1.0),
    "ema_start": config_lib.between(0.0, 1.0),
    "ema_end": config_lib.between(0.0, 1.0),
    "ipe_scale": config_lib.greater_than(0.0),
}
# run.py / src/configs.py defaults (the launch script's shares differ:
# third_party_configs/t_jepa/).
DEFAULTS = dict(indexing="features", num_preds=4, min_ctx_share=0.2,
                max_ctx_share=0.4, min_tgt_share=0.2, max_tgt_share=0.4,
                ema_start=0.996, ema_end=1.0, ipe_scale=1.0)
_STATIC = ("indexing", "num_preds", "min_ctx_share", "max_ctx_share",
           "min_tgt_share", "max_tgt_share")


@method_lib.register_method("t_jepa")
def make(method_config: dict[str, Any]) -> method_lib.Method:
  """The method; `method_config` keys: see `DEFAULTS`. Mask settings and
  `indexing` are static (they fix shapes); the EMA numbers are traced."""
  unknown = set(method_config) - set(DEFAULTS)
  if unknown:
    raise ValueError(f"config.method.t_jepa has {sorted(unknown)}; allowed "
                     f"{sorted(DEFAULTS)}")
  cfg = {**DEFAULTS, **method_config}
  for key in RULES:
    if not RULES[key].test(cfg[key]):
      raise config_lib.ConfigError(
          f"config.method.t_jepa.{key}={cfg[key]!r}; allowed "
          f"{RULES[key].allowed}")

  def hparams(mc, run):
    mc = {**DEFAULTS, **mc}
    return {"ema_start": float(mc["ema_start"]),
            "ema_end": float(mc["ema_end"]),
            "ema_steps": float(mc["ipe_scale"]) * max(run.total_steps, 1)}

  def _model_facts(model):
    d, r = getattr(model, "num_features", None), getattr(
        model, "reg_tokens", None)
    if d is None or r is None:
      raise ValueError("method t_jepa needs model 'tjepa_net' (with "
                       "num_features and reg_tokens)")
    return d, r

  def init(rng, ctx: method_lib.InitContext):
    del rng
    d, _ = _model_facts(ctx.model)
    mask_bounds(d, *(cfg[k] for k in _STATIC[2:]))   # loud check
    return method_lib.InitOutput(
        method_state={"target": ctx.params["encoder"]})

  def apply(hp, ctx: method_lib.StepContext, params, method_state, batch,
            rng):
    del hp, batch
    d, r = _model_facts(ctx.model)
    bounds = mask_bounds(d, *(cfg[k] for k in _STATIC[2:]))
    x = ctx.inputs
    masks = sample_masks(rng, x.shape[0], d, bounds, int(cfg["num_preds"]),
                         r, cfg["indexing"])
    target_params = {**params, "encoder": method_state["target"]}
    target, _ = ctx.forward(jax.lax.stop_gradient(target_params), x,
                            train=False)
    out, model_state = ctx.forward(
        params, x, train=True, context_pos=masks["context_pos"],
        context_valid=masks["context_valid"],
        target_pos=masks["target_pos"], target_valid=masks["target_valid"])
    loss = jepa_loss(out["prediction"], target["tokens"],
                     masks["target_pos"], masks["target_valid"])
    metrics = {"jepa_loss": loss, **embedding_std(target["tokens"]),
               "n_ctx": masks["n_ctx"].astype(jnp.float32),
               "n_tgt": masks["n_tgt"].astype(jnp.float32)}
    return loss, method_lib.StepAux(metrics, model_state, method_state)

  def after_update(hp, ctx: method_lib.StepContext, params, method_state,
                   rng):
    del rng
    m = momentum_at(ctx.step, hp["ema_start"], hp["ema_end"],
                    hp["ema_steps"])
    target = jax.tree.map(lambda t, c: m * t + (1.0 - m) * c,
                          method_state["target"], params["encoder"])
    return params, {**method_state, "target": target}

  def predict(hp, ctx: method_lib.StepContext, params, method_state, batch):
    del hp, batch
    return ctx.forward({**params, "encoder": method_state["target"]},
                       train=False)[0]

  return method_lib.Method(name="t_jepa", hparams=hparams, init=init,
                           apply=apply, after_update=after_update,
                           predict=predict, rules=RULES)

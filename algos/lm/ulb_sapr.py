"""ULB-SAPR: ApiQ calibration with a saliency-aware weight term.

Paper: Enhancing Ultra-Low-Bit Quantization of Large Language Models
Through Saliency-Aware Partial Retraining, arXiv:2504.13932.
Official code: https://github.com/TokuyuSou/ULB-SAPR (built on ApiQ,
arXiv:2402.05147; `apiq/calibrate.py`, `apiq/utils.py`, commit eb4cb8d).

Every linear of every transformer block (q, k, v, o, gate, up, down) is
replaced by `Q(W) + (alpha / r) B A`: `Q` the group-wise fake quantiser
with learnable clipping (`algos/lm/quantizer.py`), `A` [r, in], `B`
[out, r] a LoRA (peft's init: A ~ U(+-1/sqrt(in)), B = 0). The frozen
full-precision weights stay in `params["model"]`; only `params["lwc"]`
and `params["lora"]` train. ApiQ's block-wise objective, per block `l`
with its input from the quantised chain (no gradient through it):

  MSE(block_q(x_q), block_fp(x_fp)) + MSE(block_q(x_q), block_fp(x_q))

(the second term is `--aug_loss`), and ULB-SAPR adds the saliency term
("before_lora", `--weighted_reg`, the mixed stage):

  lambda_reg * sum_ij s_ij (Q(W)_ij - W_ij)^2,  s = Fisher diagonal,

`s` the summed squared per-sequence gradients of the full-precision
model's LM loss on the calibration rows (SqueezeLLM's gradients in the
official). `lambda_reg = 0` is ApiQ; RTN is `lwc = False` with no update.

Deviations (README): all blocks are calibrated together in one step (each
on the current quantised chain's output, inputs stopped, so each block's
parameters see only their own loss) instead of one after another; the
Fisher is accumulated over the first `saliency_steps` batches inside the
step and divided by its mean over all quantised weights (the official
loads raw sums from disk); the clipping factors are stored divided by
`lwc_lr_ratio` so one Adam learning rate gives them `lwc_lr_ratio` times
the LoRA's (official 5e-3 vs 5e-4).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from algos.lm import next_token
from algos.lm import quantizer
from common import config as config_lib
from common.core import method as method_lib
from common.models import layers_lm
from common.models import transformer as transformer_lib

TARGETS = (("attn", "q"), ("attn", "k"), ("attn", "v"), ("attn", "o"),
           ("mlp", "gate"), ("mlp", "up"), ("mlp", "down"))
_DEFAULTS = dict(bits=2, group_size=32, rank=4, lora_alpha=1.0, lwc=True,
                 aug_loss=True, lambda_reg=0.0, saliency_steps=8,
                 lwc_lr_ratio=10.0)


def targets(model_params: dict) -> list[tuple[str, str, str]]:
  """(layer, module, linear) of every quantised linear."""
  return [(layer, mod, lin) for layer in sorted(model_params)
          if layer.startswith("layer_")
          for mod, lin in TARGETS if lin in model_params[layer].get(mod, {})]


def _get(tree, path):
  for key in path:
    tree = tree[key]
  return tree


def _set(tree, path, value):
  for key in path[:-1]:
    tree = tree.setdefault(key, {})
  tree[path[-1]] = value


def effective_weight(cfg, params, path, hp) -> jax.Array:
  """The quantised linear's kernel `[in, out]`: `(Q(W) + s B A)^T`."""
  w = _get(params["model"], path)["kernel"].T                    # [out, in]
  clip = None
  if cfg["lwc"]:
    clip = jax.tree.map(lambda f: f * cfg["lwc_lr_ratio"],
                        _get(params["lwc"], path))
  w_hat = quantizer.fake_quant(w, clip, cfg["bits"], cfg["group_size"])
  lora = _get(params["lora"], path)
  scaling = hp["lora_alpha"] / cfg["rank"]
  return (w_hat + scaling * lora["B"] @ lora["A"]).T


def quantized_model_params(cfg, params, hp) -> dict:
  """The model's parameter tree with every target kernel replaced."""
  out = jax.tree.map(lambda x: x, params["model"])
  for path in targets(params["model"]):
    _set(out, path + ("kernel",), effective_weight(cfg, params, path, hp))
  return out


def saliency_term(cfg, params, fisher) -> jax.Array:
  """sum over targets of sum(s * (Q(W) - W)^2) (before the LoRA)."""
  total = 0.0
  for path in targets(params["model"]):
    w = _get(params["model"], path)["kernel"].T
    clip = None
    if cfg["lwc"]:
      clip = jax.tree.map(lambda f: f * cfg["lwc_lr_ratio"],
                          _get(params["lwc"], path))
    w_hat = quantizer.fake_quant(w, clip, cfg["bits"], cfg["group_size"])
    total = total + jnp.sum(_get(fisher, path) * jnp.square(w_hat - w))
  return total


def block_losses(cfg, ctx, params, batch, hp) -> jax.Array:
  """`[L]` ApiQ block losses of the batch (see the module docstring)."""
  c = ctx.model.config
  fp = params["model"]
  q = quantized_model_params(cfg, params, hp)
  tokens = batch["tokens"]
  positions, mask, _ = transformer_lib.attention_layout(
      tokens.shape, batch.get("positions"), batch.get("segment_ids"), None)
  block = layers_lm.Block(c)
  run = lambda p, x: block.apply({"params": p}, x, positions, mask, None, 0,
                                 False, False)[0]
  x_fp = jax.lax.stop_gradient(fp["embed"]["embedding"][tokens])
  x_q, losses = x_fp, []
  for i in range(c.num_layers):
    name = f"layer_{i}"
    x_q = jax.lax.stop_gradient(x_q)
    out_q = run(q[name], x_q)
    x_fp = jax.lax.stop_gradient(run(fp[name], x_fp))
    loss = jnp.mean(jnp.square(out_q - x_fp))
    if cfg["aug_loss"]:
      loss = loss + jnp.mean(jnp.square(
          out_q - jax.lax.stop_gradient(run(fp[name], x_q))))
    losses.append(loss)
    x_q = out_q
  return jnp.stack(losses)


def fisher_update(cfg, ctx, params, batch) -> dict:
  """Summed squared per-row gradients of the fp LM loss at the targets."""
  fp = params["model"]
  paths = targets(fp)

  def row_loss(kernels, row):
    p = jax.tree.map(lambda x: x, fp)
    for path, k in zip(paths, kernels):
      _set(p, path + ("kernel",), k)
    one = jax.tree.map(lambda x: x[None], row)
    kw = {k: one[k] for k in ("segment_ids", "positions") if k in one}
    out = ctx.model.apply({"params": p}, one["tokens"], train=False,
                          compute_logits=True, **kw)
    logp = jax.nn.log_softmax(out["logits"][0])
    nll = -jnp.take_along_axis(logp, one["targets"][0][:, None], -1)[:, 0]
    return jnp.sum(nll * one["loss_mask"][0])

  kernels = [_get(fp, path)["kernel"] for path in paths]
  rows = {k: batch[k] for k in ("tokens", "targets", "loss_mask",
                                "segment_ids", "positions") if k in batch}
  grads = jax.vmap(jax.grad(row_loss), in_axes=(None, 0))(kernels, rows)
  out = {}
  for path, g in zip(paths, grads):
    _set(out, path, jnp.sum(jnp.square(g), 0).T)                 # [out, in]
  return out


@method_lib.register_method("ulb_sapr")
def make(method_config: dict[str, Any]) -> method_lib.Method:
  """Config keys: `bits` (2, 3, 4), `group_size`, `rank`, `lora_alpha`,
  `lwc`, `aug_loss`, `lambda_reg` (0 = ApiQ), `saliency_steps`,
  `lwc_lr_ratio`."""
  unknown = set(method_config) - set(_DEFAULTS)
  if unknown:
    raise config_lib.ConfigError(
        f"config.method.ulb_sapr has {sorted(unknown)}; it reads "
        f"{sorted(_DEFAULTS)}")
  cfg = {**_DEFAULTS, **method_config}
  cfg["bits"], cfg["group_size"], cfg["rank"] = (
      int(cfg["bits"]), int(cfg["group_size"]), int(cfg["rank"]))
  try:
    quantizer.check(cfg["bits"], cfg["group_size"])
  except ValueError as e:
    raise config_lib.ConfigError(f"config.method.ulb_sapr: {e}") from None
  if cfg["rank"] < 1:
    raise config_lib.ConfigError(
        f"config.method.ulb_sapr.rank={cfg['rank']} must be >= 1")

  def hparams(method_cfg, run):
    del method_cfg, run
    return {k: float(cfg[k]) for k in ("lora_alpha", "lambda_reg",
                                        "saliency_steps")}

  def init(rng, ctx):
    fp = ctx.params.get("model", ctx.params)
    lwc, lora, fisher = {}, {}, {}
    for n, path in enumerate(targets(fp)):
      d_in, d_out = _get(fp, path)["kernel"].shape
      quantizer.check(cfg["bits"], cfg["group_size"], d_in)
      if cfg["rank"] > min(d_in, d_out):
        raise config_lib.ConfigError(
            f"config.method.ulb_sapr.rank={cfg['rank']} exceeds "
            f"min(in, out)={min(d_in, d_out)} of {'/'.join(path)}")
      _set(lwc, path, quantizer.init_clipping(
          (d_out, d_in), cfg["group_size"],
          quantizer.LWC_INIT / cfg["lwc_lr_ratio"]))
      bound = 1.0 / math.sqrt(d_in)
      _set(lora, path, {
          "A": jax.random.uniform(jax.random.fold_in(rng, n),
                                  (cfg["rank"], d_in), jnp.float32,
                                  -bound, bound),
          "B": jnp.zeros((d_out, cfg["rank"]), jnp.float32)})
      _set(fisher, path, jnp.zeros((d_out, d_in), jnp.float32))
    params = {"model": fp, "lwc": lwc, "lora": lora}
    return method_lib.InitOutput(
        method_state={"fisher": fisher}, params=params)

  def apply(hp, ctx, params, method_state, batch, rng):
    del rng
    fisher = jax.lax.cond(
        ctx.step < hp["saliency_steps"],
        lambda f: jax.tree.map(jnp.add, f,
                               fisher_update(cfg, ctx, params, batch)),
        lambda f: f, method_state["fisher"])
    mean = sum(jnp.sum(f) for f in jax.tree.leaves(fisher)) / float(sum(
        f.size for f in jax.tree.leaves(fisher)))
    sal = jax.tree.map(lambda f: f / jnp.maximum(mean, 1e-30), fisher)
    blocks = block_losses(cfg, ctx, params, batch, hp)
    reg = saliency_term(cfg, params, sal)
    loss = jnp.sum(blocks) + hp["lambda_reg"] * reg
    metrics = {"loss": loss, "block_mse": jnp.sum(blocks),
               "saliency_term": reg}
    metrics.update({f"block_mse/layer_{i}": blocks[i]
                    for i in range(blocks.shape[0])})
    return loss, method_lib.StepAux(metrics, ctx.model_state,
                                    {"fisher": fisher})

  def predict(hp, ctx, params, method_state, batch):
    del method_state
    model_params = quantized_model_params(cfg, params, hp)
    nll, _ = next_token.token_nll(ctx, model_params, batch, loss="naive",
                                  softcap=next_token._softcap(ctx.model),
                                  train=False)
    return {"token_nll": nll}

  trainable = lambda params: {
      k: jax.tree.map(lambda _: k != "model", v) for k, v in params.items()}
  return method_lib.Method(name="ulb_sapr", hparams=hparams, init=init,
                           apply=apply, predict=predict, trainable=trainable)

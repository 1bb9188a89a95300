"""Open-set TTA by confidence-drop selection ("wisdom of crowds").

Paper: Towards Open-Set Test-Time Adaptation Utilizing the Wisdom of Crowds
in Entropy Minimization, Lee, Das, Choo, Choi, ICCV 2023, arXiv:2308.06879.
No official repository was found; the update follows the paper's rule and
the public re-implementation in gaozhengqing/UniEnt (`cifar/ostta.py`):

  p_o = softmax(f_original(x)),  c_o = argmax p_o,  y_o = max p_o
  p_a = softmax(f_adapted(x))
  S   = {i : p_a[i, c_o] >= y_o[i]}    (drop samples whose confidence in
                                        the original prediction fell)
  L   = mean_{i in S} H(p_a,i) - diversity_weight * H(mean_batch p_a)
  BatchNorm scale/bias step (Tent's parameters); report the pre-update p_a.

The "original" model is the source weights with test-batch BatchNorm
statistics (UniEnt deep-copies the configured model). UniEnt always adds the
diversity term (alpha 0.5); whether the paper's Tent+selection does is not
stated in the text we could read, so it is a config value, 0 by default
(selection on top of plain Tent). `select=0` gives plain Tent. An empty
selection gives zero entropy loss (not NaN).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from algos.tta import losses
from common import adapt


def hparams(config: dict[str, Any], num_classes: int) -> dict[str, float]:
  del num_classes
  return {"diversity_weight": float(config.get("diversity_weight", 0.0)),
          "select": float(config.get("select", 1.0))}


def init(rng, params, ctx):
  del rng, ctx
  return {"original": jax.tree.map(jnp.copy, params)}


def confidence_kept(original_logits, adapted_logits):
  """`[b]` bool: the adapted prob of the original's class did not drop."""
  p_o = jax.nn.softmax(original_logits, -1)
  c_o = jnp.argmax(p_o, -1)
  y_o = jnp.max(p_o, -1)
  p_a = jax.nn.softmax(adapted_logits, -1)
  y_a = jnp.take_along_axis(p_a, c_o[:, None], -1)[:, 0]
  return y_a >= y_o


def adapt_fn(hp, method_state, params, images, rng, ctx):
  original = jax.lax.stop_gradient(
      ctx.forward(method_state["original"], images, rng))

  def loss_fn(p):
    z = ctx.forward(p, images, rng)
    keep = confidence_kept(original, jax.lax.stop_gradient(z))
    keep = jnp.where(hp["select"] > 0, keep, True)
    ent = losses.weighted_mean(losses.softmax_entropy(z),
                               keep.astype(jnp.float32))
    div = losses.mean_prediction_entropy(z)
    return ent - hp["diversity_weight"] * div, (z, keep)

  (value, (logits, keep)), grads = ctx.value_and_grad(loss_fn, params)
  n = jnp.sum(keep.astype(jnp.float32))
  return adapt.AdaptOutput(
      # Nothing selected and no diversity term: no step (PyTorch would
      # back-propagate a NaN mean here).
      jax.lax.stop_gradient(logits), grads,
      (n > 0) | (hp["diversity_weight"] > 0), method_state,
      {"loss": value, "selected": n, "backward_samples": n,
       "backward_rows": jnp.asarray(images.shape[0], jnp.float32)})


def predict(hp, method_state, params, images, ctx):
  del hp, method_state
  return ctx.forward(params, images)


@adapt.register_tta("ostta")
def make(config: dict[str, Any]) -> adapt.TTAMethod:
  del config
  return adapt.TTAMethod(name="ostta", trains="norm", init=init,
                         adapt=adapt_fn, predict=predict, hparams=hparams)

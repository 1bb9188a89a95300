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
from algos.tta import tta_lib
from common import config as config_lib
from common.core import method as method_lib

RULES = {"diversity_weight": config_lib.at_least(0.0),
         "select": config_lib.one_of(0.0, 1.0)}   # 0: plain Tent


def hparams(config: dict[str, Any], run: method_lib.RunInfo
            ) -> dict[str, float]:
  del run
  return {"diversity_weight": float(config.get("diversity_weight", 0.0)),
          "select": float(config.get("select", 1.0))}


def init(rng, ctx: method_lib.InitContext):
  del rng
  return {"original": jax.tree.map(jnp.copy, ctx.params)}


def confidence_kept(original_logits, adapted_logits):
  """`[b]` bool: the adapted prob of the original's class did not drop."""
  p_o = jax.nn.softmax(original_logits, -1)
  c_o = jnp.argmax(p_o, -1)
  y_o = jnp.max(p_o, -1)
  p_a = jax.nn.softmax(adapted_logits, -1)
  y_a = jnp.take_along_axis(p_a, c_o[:, None], -1)[:, 0]
  return y_a >= y_o


def apply(hp, ctx, params, method_state, batch, rng):
  """Entropy of the kept samples minus the weighted diversity term."""
  del batch, rng
  original = jax.lax.stop_gradient(
      tta_lib.forward(ctx, method_state["original"]))
  z = tta_lib.forward(ctx, params)
  keep = confidence_kept(original, jax.lax.stop_gradient(z))
  keep = jnp.where(hp["select"] > 0, keep, True)
  ent = losses.weighted_mean(losses.softmax_entropy(z),
                             keep.astype(jnp.float32))
  div = losses.mean_prediction_entropy(z)
  n = jnp.sum(keep.astype(jnp.float32))
  metrics = {"selected": n, "backward_samples": n,
             "backward_rows": tta_lib.batch_count(z)}
  # Nothing selected and no diversity term: no step (PyTorch would
  # back-propagate a NaN mean here).
  return ent - hp["diversity_weight"] * div, tta_lib.step_aux(
      ctx, method_state, z, metrics,
      apply_update=(n > 0) | (hp["diversity_weight"] > 0))


@method_lib.register_method("ostta")
def make(config: dict[str, Any]) -> method_lib.Method:
  del config
  return method_lib.Method(
      name="ostta", init=init, apply=apply,
      predict=tta_lib.predict_batch_stats, trainable="norm",
      hparams=hparams, rules=RULES)

"""A small mixture-of-experts on digits: top-k vs sparse-OT routing.

Paper: Liu, Puigcerver, Blondel, "Sparsity-Constrained Optimal Transport",
ICLR 2023, arXiv:2209.15466 (Sec. 1 and 5: sparse-OT routing of tokens to
capacity-limited experts, the V-MoE setting). No official repository; the
solver is ours (`algos/ot/sparse_ot.py`, POT as the oracle).

Each 8x8 digit is cut into four 4x4 patches (tokens, with a learned
position embedding). One MoE layer of E expert MLPs processes the tokens of
the whole batch (n = 4 * batch tokens); each expert takes at most
`capacity = round(capacity_factor * n / E)` tokens. Tokens are mean-pooled
into a linear classifier. Routers (`router`, a static model attribute, so
the two are arms of one study):

* `topk`: token choice, top-1 expert per token by router softmax, tokens
  over an expert's capacity are dropped (they skip the MoE layer: residual
  only), combine weight = router probability (Switch / V-MoE style).
* `sparse_ot`: the routing plan P [n, E] of `algos.ot.sparse_ot` on the cost
  -log softmax(router logits), uniform marginals, at most `capacity`
  non-zeros per expert column; combine weight of (token i, expert j) =
  n * P_ij, so every token's weights sum to ~1 and gradients reach the
  router through the solver's implicit differentiation.

The model is registered as "digit_moe" and trains with the shared step and
the registered `cross_entropy` method. The evaluator "moe_routing" reports
test accuracy and load balance: the fraction of tokens that reach no expert
(dropped), the coefficient of variation of tokens per expert (before
capacity truncation for `topk`) and the largest expert load.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from algos.ot import sparse_ot
from common.core import sharding as sharding_lib
from common.eval import evaluators
from common.models import registry

PATCH = 4
ROUTERS = ("topk", "sparse_ot")


def tokens_from_images(images: jax.Array) -> jax.Array:
  """`[b, 8, 8, 1]` float images -> `[b, 4, 16]` patch tokens."""
  x = images[..., 0]
  b = x.shape[0]
  x = x.reshape(b, 2, PATCH, 2, PATCH).transpose(0, 1, 3, 2, 4)
  return x.reshape(b, 4, PATCH * PATCH)


def capacity_of(num_tokens: int, num_experts: int,
                capacity_factor: float) -> int:
  """Tokens an expert may take: `round(capacity_factor * n / E)`, >= 1."""
  return max(1, int(round(capacity_factor * num_tokens / num_experts)))


def route(logits: jax.Array, router: str, capacity: int, gamma: float
          ) -> tuple[jax.Array, jax.Array, jax.Array]:
  """`(weights, routed, wanted)`, each `[n, E]`, from router logits `[n, E]`.

  `weights` combine the experts' outputs; `routed` (0/1) marks the
  (token, expert) pairs that are computed; `wanted` the ones the router
  asked for (top-k: before capacity truncation).
  """
  n, num_experts = logits.shape
  if router == "topk":
    probs = jax.nn.softmax(logits, -1)
    wanted = jax.nn.one_hot(jnp.argmax(logits, -1), num_experts)
    # Position of each token in its expert's queue (batch order, as V-MoE).
    position = (jnp.cumsum(wanted, 0) - 1.0) * wanted
    routed = wanted * (position < capacity)
    return routed * probs, routed, wanted
  if router == "sparse_ot":
    cost = -jax.nn.log_softmax(logits, -1)
    out = sparse_ot.solve_cost_matrix(cost, capacity, gamma, max_iter=100,
                                      tol=1e-5)
    routed = (out.plan > 0).astype(jnp.float32)
    return n * out.plan, routed, routed
  raise ValueError(f"router={router!r}; allowed: {ROUTERS}")


class _Expert(nn.Module):
  width: int

  @nn.compact
  def __call__(self, x):
    return nn.Dense(self.width)(nn.gelu(nn.Dense(2 * self.width)(x)))


@registry.register_model("digit_moe")
class DigitMoE(nn.Module):
  """Patch tokens -> one MoE layer (residual) -> mean pool -> classifier.

  Routing couples all tokens of the global batch: the `[n, E]` router
  logits are gathered onto every device (replicated sharding) and the small
  routing problem is solved there, so every device count solves the same
  problem (an iterative solve on sharded logits would agree only to its
  tolerance).
  """
  num_classes: int
  num_experts: int = 4
  width: int = 32
  router: str = "topk"
  capacity_factor: float = 1.0
  gamma: float = 1.0          # the sparse-OT router's regularisation
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False
               ) -> dict[str, jax.Array]:
    """`images [b, 8, 8, 1]` -> `logits [b, C]`, `features [b, width]`,
    and the routing of each token, `routed`, `wanted` `[b, 4, E]`."""
    del train
    tok = tokens_from_images(images.astype(self.dtype))       # [b, 4, 16]
    b, t, _ = tok.shape
    h = nn.Dense(self.width)(tok) + self.param(
        "pos", nn.initializers.normal(0.02), (t, self.width))
    flat = h.reshape(b * t, self.width)                       # [n, width]
    logits = nn.Dense(self.num_experts, name="router")(flat)
    logits = jax.lax.with_sharding_constraint(
        logits, sharding_lib.replicated(sharding_lib.make_mesh()))
    capacity = capacity_of(b * t, self.num_experts, self.capacity_factor)
    weights, routed, wanted = route(logits, self.router, capacity,
                                    self.gamma)
    experts = nn.vmap(
        lambda mdl, z: mdl(z), variable_axes={"params": 0},
        split_rngs={"params": True}, in_axes=None, out_axes=1,
        axis_size=self.num_experts)(_Expert(self.width), flat)  # [n, E, w]
    # Dense compute then mask: tiny E; the weights are zero off the routing.
    mixed = jnp.einsum("ne,new->nw", weights, experts)
    h = (flat + mixed).reshape(b, t, self.width).mean(1)
    features = nn.LayerNorm()(h)
    return {"logits": nn.Dense(self.num_classes, name="head")(features),
            "features": features,
            "routed": routed.reshape(b, t, -1),
            "wanted": wanted.reshape(b, t, -1)}


@evaluators.register_evaluator("moe_routing")
def evaluate(setup: Any, state: Any) -> dict[str, float]:
  """Test accuracy (%) and load balance, routed per eval batch.

  Routing depends on the batch, so the test split is cut into batches of
  the training size (`train.eval_batch_size` must equal
  `train.batch_size`) and the last, incomplete batch is left out. Returns
  `accuracy`, `dropped` (% of tokens reaching no expert), `load_cv`,
  `max_tokens_per_expert` (over batches) and `capacity`.
  """
  cfg = setup.config.train
  if cfg.eval_batch_size != cfg.batch_size:
    raise ValueError(
        f"moe_routing routes test batches like training batches: set "
        f"train.eval_batch_size={cfg.batch_size} (= train.batch_size), "
        f"not {cfg.eval_batch_size}")
  keys = ("logits", "routed", "wanted")
  acc, dropped, cv, max_load = [], [], [], []
  for batch in setup.eval_batches():
    host = jax.device_get({"label": batch["label"], "mask": batch["mask"]})
    if not np.all(host["mask"]):
      continue
    out = jax.device_get(setup.eval_step(state, batch, setup.hparams,
                                         output_keys=keys))
    routed, wanted = out["routed"], out["wanted"]
    acc.append(np.mean(np.argmax(out["logits"], -1) == host["label"]))
    dropped.append(np.mean(routed.sum(-1) == 0))
    per_expert = wanted.sum((0, 1))
    cv.append(per_expert.std() / max(per_expert.mean(), 1e-9))
    max_load.append(routed.sum((0, 1)).max())
  if not acc:
    raise ValueError(f"the eval split has no full batch of "
                     f"{cfg.batch_size} examples")
  model = setup.model
  tokens = 4 * cfg.batch_size
  return {"accuracy": 100.0 * float(np.mean(acc)),
          "dropped": 100.0 * float(np.mean(dropped)),
          "load_cv": float(np.mean(cv)),
          "max_tokens_per_expert": float(np.max(max_load)),
          "capacity": float(capacity_of(tokens, model.num_experts,
                                        model.capacity_factor))}

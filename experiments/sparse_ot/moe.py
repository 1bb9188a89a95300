"""A small mixture-of-experts on digits: top-k vs sparsity-constrained OT routing.

Each 8x8 digit is cut into four 4x4 patches (tokens, with a learned position
embedding). One MoE layer of E expert MLPs processes the tokens of the whole
batch (n = 4 * batch tokens); each expert takes at most `capacity` tokens
(capacity = capacity_factor * n / E), the V-MoE setting the paper motivates
(Liu et al. 2023, Sec. 1 and 5). Tokens are mean-pooled into a linear
classifier. Routers:

* `topk`: token choice, top-1 expert per token by router softmax, tokens over
  an expert's capacity are dropped (they skip the MoE layer: residual only),
  combine weight = router probability (Switch / V-MoE style).
* `sparse_ot`: the routing plan P [n, E] of `algos.ot.sparse_ot` on the cost
  -log softmax(router logits), uniform marginals, at most `capacity` non-zeros
  per expert column; combine weight of (token i, expert j) = n * P_ij, so
  every token's weights sum to ~1 and gradients reach the router through the
  solver's implicit differentiation.

Load balance is reported as the fraction of tokens that reach no expert
(dropped) and the coefficient of variation of tokens per expert (before
capacity truncation for `topk`).
"""

from __future__ import annotations

import time
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from algos.ot import sparse_ot
from common.data import sources

PATCH = 4


def tokens_from_images(images: jax.Array) -> jax.Array:
  """`[b, 8, 8, 1]` uint8 -> `[b, 4, 16]` float patches in [0, 1]."""
  x = images.astype(jnp.float32)[..., 0] / 255.0
  b = x.shape[0]
  x = x.reshape(b, 2, PATCH, 2, PATCH).transpose(0, 1, 3, 2, 4)
  return x.reshape(b, 4, PATCH * PATCH)


def route(logits: jax.Array, router: str, capacity: int,
          gamma: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Combine weights `[n, E]` from router logits `[n, E]`, and balance stats."""
  n, num_experts = logits.shape
  probs = jax.nn.softmax(logits, -1)
  if router == "topk":
    choice = jnp.argmax(logits, -1)
    onehot = jax.nn.one_hot(choice, num_experts)
    # Position of each token in its expert's queue (batch order, as V-MoE).
    position = (jnp.cumsum(onehot, 0) - 1.0) * onehot
    kept = onehot * (position < capacity)
    weights = kept * probs
    wanted = onehot.sum(0)
  elif router == "sparse_ot":
    cost = -jax.nn.log_softmax(logits, -1)
    out = sparse_ot.solve_cost_matrix(cost, capacity, gamma, max_iter=100,
                                      tol=1e-5)
    weights = n * out.plan
    kept = (out.plan > 0).astype(jnp.float32)
    wanted = kept.sum(0)
  else:
    raise ValueError(f"router={router!r}; allowed: 'topk', 'sparse_ot'")
  load = kept.sum(0)
  stats = {
      "dropped": jnp.mean(kept.sum(1) == 0),
      "load_cv": jnp.std(wanted) / jnp.maximum(jnp.mean(wanted), 1e-9),
      "max_tokens_per_expert": load.max(),
  }
  return weights, stats


class DigitMoE(nn.Module):
  """Patch tokens -> one MoE layer (residual) -> mean pool -> classifier."""
  num_experts: int
  width: int
  router: str
  capacity: int

  @nn.compact
  def __call__(self, images, gamma):
    tok = tokens_from_images(images)                     # [b, 4, 16]
    b, t, _ = tok.shape
    h = nn.Dense(self.width)(tok) + self.param(
        "pos", nn.initializers.normal(0.02), (t, self.width))
    flat = h.reshape(b * t, self.width)                  # [n, width]
    logits = nn.Dense(self.num_experts, name="router")(flat)
    weights, stats = route(logits, self.router, self.capacity, gamma)
    experts = nn.vmap(
        lambda mdl, z: mdl(z), variable_axes={"params": 0},
        split_rngs={"params": True}, in_axes=None, out_axes=1,
        axis_size=self.num_experts)(_Expert(self.width), flat)  # [n, E, w]
    # Dense compute then mask: tiny E; the weights are zero off the routing.
    mixed = jnp.einsum("ne,new->nw", weights, experts)
    h = (flat + mixed).reshape(b, t, self.width).mean(1)
    return nn.Dense(10)(nn.LayerNorm()(h)), stats


class _Expert(nn.Module):
  width: int

  @nn.compact
  def __call__(self, x):
    return nn.Dense(self.width)(nn.gelu(nn.Dense(2 * self.width)(x)))


def load_digits() -> dict[str, np.ndarray]:
  out = {}
  for split in ("train", "test"):
    src = sources.open_split("digits", split)
    batch = src.get(np.arange(len(src)))
    out[split] = (np.asarray(batch["image"]), np.asarray(batch["label"]))
  return out


def train_and_eval(router: str, seed: int, moe: Any,
                   data: dict[str, np.ndarray] | None = None
                   ) -> dict[str, float]:
  """Trains one MoE for `moe.steps` steps; test accuracy and balance stats."""
  data = data or load_digits()
  x_train, y_train = data["train"]
  x_test, y_test = data["test"]
  n_tokens = 4 * moe.batch_size
  capacity = max(1, int(round(moe.capacity_factor * n_tokens
                              / moe.num_experts)))
  model = DigitMoE(moe.num_experts, moe.width, router, capacity)
  gamma = jnp.float32(moe.gamma)
  rng = jax.random.PRNGKey(seed)
  params = model.init(rng, jnp.asarray(x_train[:moe.batch_size]), gamma)
  tx = optax.adam(moe.learning_rate)
  opt_state = tx.init(params)

  @jax.jit
  def step(params, opt_state, images, labels, gamma):
    def loss_fn(p):
      logits, stats = model.apply(p, images, gamma)
      loss = optax.softmax_cross_entropy_with_integer_labels(logits,
                                                             labels).mean()
      return loss, stats
    (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss, stats

  @jax.jit
  def evaluate(params, images, labels, gamma):
    logits, stats = model.apply(params, images, gamma)
    return (jnp.argmax(logits, -1) == labels).mean(), stats

  perm_rng = np.random.default_rng(seed)
  start = time.time()
  for _ in range(moe.steps):
    idx = perm_rng.integers(0, len(x_train), moe.batch_size)
    params, opt_state, loss, _ = step(params, opt_state,
                                      jnp.asarray(x_train[idx]),
                                      jnp.asarray(y_train[idx]), gamma)
  if not np.isfinite(float(loss)):
    raise FloatingPointError(f"MoE {router} seed {seed}: non-finite loss")
  train_seconds = time.time() - start
  # Routing depends on the batch: evaluate in batches of the training size.
  accs, stats = [], []
  usable = len(x_test) // moe.batch_size * moe.batch_size
  for i in range(0, usable, moe.batch_size):
    acc, st = evaluate(params, jnp.asarray(x_test[i:i + moe.batch_size]),
                       jnp.asarray(y_test[i:i + moe.batch_size]), gamma)
    accs.append(float(acc))
    stats.append(jax.device_get(st))
  return {
      "accuracy": 100.0 * float(np.mean(accs)),
      "dropped": 100.0 * float(np.mean([s["dropped"] for s in stats])),
      "load_cv": float(np.mean([s["load_cv"] for s in stats])),
      "max_tokens_per_expert": float(np.max(
          [s["max_tokens_per_expert"] for s in stats])),
      "capacity": float(capacity),
      "train_seconds": train_seconds,
  }

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

Training is data-parallel over the `("data",)` mesh of `common.sharding`
(batch split over devices, replicated parameters, global-batch routing).
"""

from __future__ import annotations

import functools
import time
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from algos.ot import sparse_ot
from common.core import sharding as sharding_lib
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
  """Patch tokens -> one MoE layer (residual) -> mean pool -> classifier.

  `routing_sharding` (a replicated `NamedSharding` under data parallelism)
  gathers the `[n, E]` router logits onto every device before routing: the
  routing problem couples all tokens of the global batch, it is small, and
  solving it replicated gives every device count the same plan (an
  iterative solve on sharded logits would only agree to its tolerance).
  """
  num_experts: int
  width: int
  router: str
  capacity: int
  routing_sharding: Any = None

  @nn.compact
  def __call__(self, images, gamma):
    tok = tokens_from_images(images)                     # [b, 4, 16]
    b, t, _ = tok.shape
    h = nn.Dense(self.width)(tok) + self.param(
        "pos", nn.initializers.normal(0.02), (t, self.width))
    flat = h.reshape(b * t, self.width)                  # [n, width]
    logits = nn.Dense(self.num_experts, name="router")(flat)
    if self.routing_sharding is not None:
      logits = jax.lax.with_sharding_constraint(logits, self.routing_sharding)
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


def _capacity(moe: Any) -> int:
  return max(1, int(round(moe.capacity_factor * 4 * moe.batch_size
                          / moe.num_experts)))


def train(router: str, seed: int, moe: Any, data: dict[str, np.ndarray],
          mesh: jax.sharding.Mesh | None = None):
  """Trains one MoE for `moe.steps` Adam steps, data-parallel.

  As the shared harness does (`common.sharding`): each host batch is placed
  as a global array split over the `("data",)` mesh, parameters and
  optimizer state are replicated, and the step is jitted with those
  shardings. Routing, the loss and the capacity are those of the *global*
  batch (all `4 * moe.batch_size` tokens compete for the experts whatever
  the device count), so 1 and N devices train the same model up to the
  order of floating-point sums.

  Args:
    router: "topk" or "sparse_ot".
    seed: initialisation and batch order.
    moe: the `config.moe` block (`batch_size` a multiple of the devices).
    data: `{"train": (images [N, 8, 8, 1] uint8, labels [N])}`.
    mesh: the data mesh (default: every device).

  Returns:
    `(model, params, losses [steps], train_seconds)`.
  """
  sharding_lib.check_batch_size(moe.batch_size, "moe.batch_size")
  mesh = mesh or sharding_lib.make_mesh()
  repl = sharding_lib.replicated(mesh)
  x_train, y_train = data["train"]
  model = DigitMoE(moe.num_experts, moe.width, router, _capacity(moe),
                   routing_sharding=repl)
  gamma = sharding_lib.replicate(jnp.float32(moe.gamma), mesh)
  rng = jax.random.PRNGKey(seed)
  tx = optax.adam(moe.learning_rate)

  @functools.partial(jax.jit, out_shardings=repl)
  def init(images):
    params = model.init(rng, images, gamma)
    return params, tx.init(params)

  @functools.partial(jax.jit, donate_argnums=(0, 1),
                     out_shardings=(repl, repl, repl))
  def step(params, opt_state, batch, gamma):
    def loss_fn(p):
      logits, stats = model.apply(p, batch["image"], gamma)
      loss = optax.softmax_cross_entropy_with_integer_labels(
          logits, batch["label"]).mean()
      return loss, stats
    (loss, _), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  params, opt_state = init(jnp.asarray(x_train[:moe.batch_size]))
  perm_rng = np.random.default_rng(seed)
  losses = []
  start = time.time()
  for _ in range(moe.steps):
    idx = perm_rng.integers(0, len(x_train), moe.batch_size)
    batch = sharding_lib.shard_batch(
        {"image": x_train[idx], "label": y_train[idx]}, mesh)
    params, opt_state, loss = step(params, opt_state, batch, gamma)
    losses.append(loss)
  losses = [float(v) for v in jax.device_get(losses)]
  if not np.all(np.isfinite(losses)):
    raise FloatingPointError(f"MoE {router} seed {seed}: non-finite loss")
  return model, params, losses, time.time() - start


def evaluate(model: DigitMoE, params: Any, moe: Any,
             data: dict[str, np.ndarray],
             mesh: jax.sharding.Mesh | None = None) -> dict[str, float]:
  """Test accuracy and balance stats, routed in batches of `moe.batch_size`.

  Routing depends on the batch, so the test set is cut into batches of the
  training size (the last incomplete batch is left out), each split over
  the mesh like a training batch.
  """
  mesh = mesh or sharding_lib.make_mesh()
  x_test, y_test = data["test"]
  gamma = sharding_lib.replicate(jnp.float32(moe.gamma), mesh)

  @jax.jit
  def batch_eval(params, batch, gamma):
    logits, stats = model.apply(params, batch["image"], gamma)
    return (jnp.argmax(logits, -1) == batch["label"]).mean(), stats

  accs, stats = [], []
  usable = len(x_test) // moe.batch_size * moe.batch_size
  for i in range(0, usable, moe.batch_size):
    batch = sharding_lib.shard_batch(
        {"image": x_test[i:i + moe.batch_size],
         "label": y_test[i:i + moe.batch_size]}, mesh)
    acc, st = batch_eval(params, batch, gamma)
    accs.append(float(acc))
    stats.append(jax.device_get(st))
  return {
      "accuracy": 100.0 * float(np.mean(accs)),
      "dropped": 100.0 * float(np.mean([s["dropped"] for s in stats])),
      "load_cv": float(np.mean([s["load_cv"] for s in stats])),
      "max_tokens_per_expert": float(np.max(
          [s["max_tokens_per_expert"] for s in stats])),
      "capacity": float(model.capacity),
  }


def train_and_eval(router: str, seed: int, moe: Any,
                   data: dict[str, np.ndarray] | None = None
                   ) -> dict[str, float]:
  """Trains one MoE for `moe.steps` steps; test accuracy and balance stats."""
  data = data or load_digits()
  model, params, _, train_seconds = train(router, seed, moe, data)
  return {**evaluate(model, params, moe, data),
          "train_seconds": train_seconds}

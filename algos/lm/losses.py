"""Per-token next-token losses of features and a classifier, by name.

A loss maps the model's final features and the unembedding to the negative
log-likelihood of each target, so a loss that never materialises the
`[N, V]` logits (CCE) plugs in next to the naive one:

    loss(features [N, D], classifier [V, D], targets [N] int32, *,
         softcap: float | None = None) -> nll [N] float32

Losses register with `@register_loss("name")` in `algos/lm/` (found by
scanning, like methods); the LM method picks one with its `loss` key.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from common import registry

TokenLoss = Callable[..., jax.Array]
LOSSES: registry.Registry[TokenLoss] = registry.Registry(
    "lm loss", ("algos.lm",), "register_loss")
register_loss = LOSSES.register


def soft_cap(logits: jax.Array, cap: float | jax.Array | None) -> jax.Array:
  """`cap * tanh(logits / cap)` (Gemma 2's final-logit soft-capping)."""
  return logits if cap is None else cap * jnp.tanh(logits / cap)


@register_loss("naive")
def naive_loss(features: jax.Array, classifier: jax.Array,
               targets: jax.Array, *,
               softcap: float | jax.Array | None = None) -> jax.Array:
  """Cross-entropy through the full logits `[N, V]` (the reference).

  The logits are accumulated in float32 whatever the compute dtype
  (bf16 features and classifier: one bf16 matmul with f32 accumulation),
  so the log-sum-exp never runs in bf16.

  Args:
    features: `[N, D]` final hidden states.
    classifier: `[V, D]` unembedding.
    targets: int `[N]` next-token ids.
    softcap: optional final-logit soft-capping value.

  Returns:
    float32 `[N]`: `logsumexp(logits) - logits[target]`.
  """
  classifier = classifier.astype(features.dtype)
  logits = jnp.dot(features, classifier.T,
                   preferred_element_type=jnp.float32)
  logits = soft_cap(logits, softcap)
  correct = jnp.take_along_axis(logits, targets[:, None], axis=-1)[:, 0]
  return jax.nn.logsumexp(logits, axis=-1) - correct


def get_loss(name: str) -> TokenLoss:
  return LOSSES.get(name)


def loss_names() -> list[str]:
  return LOSSES.names()

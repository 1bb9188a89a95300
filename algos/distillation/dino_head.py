"""A zoo encoder with a DINO projection head (model `dino_net`).

The network of "Random Teachers are Good Teachers" (Sarnthein et al.,
ICML 2023, arXiv 2302.12091; official code github.com/safelix/dinopl,
`dinopl/core.py` `DINOHead`, `dinopl/modules/l2bottleneck.py`): an encoder
(any registered zoo classifier, whose "features" are the embedding), then
an MLP with GELU (`hidden_dims`), then the L2 bottleneck of the official
default `l2bot_cfg='-/lb/fn/wn/l/-'`: Dense(bottleneck, bias) -> L2-normalise
-> a weight-normalised (unit-norm rows, no gain, no bias) Dense(out_dim).
Linear layers of the head start from `trunc_normal(std=0.02)` (torch's
`trunc_normal_` cuts at +-2 in absolute value: +-100 std) and zero biases.

Outputs: "logits" = the projections `[b, out_dim]` (the DINO loss centres
and tempers them; they are not class scores), "features" = the encoder's
embedding `[b, d]` (what the linear probe reads, as the official prober
reads `enc`'s output).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from common import models

Dtype = Any

_HEAD_INIT = nn.initializers.truncated_normal(0.02, lower=-100.0, upper=100.0)


class WeightNormDense(nn.Module):
  """`x @ (W / ||W||_col)`: each output unit's weight vector has norm 1."""
  features: int
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param("kernel", _HEAD_INIT, (x.shape[-1], self.features),
                        self.param_dtype)
    norm = jnp.linalg.norm(kernel, axis=0, keepdims=True)
    kernel = kernel / jnp.maximum(norm, 1e-12)
    return x.astype(self.dtype) @ kernel.astype(self.dtype)


def l2_normalize(x: jax.Array, eps: float = 1e-12) -> jax.Array:
  """Rows of `x` `[b, d]` divided by their L2 norm (clamped at `eps`)."""
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), eps)


class DINONet(nn.Module):
  """Encoder -> MLP (GELU) -> L2 bottleneck -> weight-normalised layer.

  Attributes:
    encoder: a zoo classifier; its "features" are the embedding.
    hidden_dims: widths of the head's MLP (official default (2048, 2048)).
    bottleneck_dim: L2-bottleneck width; <= 0 replaces the bottleneck by
      one plain Dense(out_dim).
    out_dim: projection dimension (official default 65536).
    dtype, param_dtype: computation and storage dtypes.
  """
  encoder: nn.Module
  hidden_dims: Sequence[int] = (2048, 2048)
  bottleneck_dim: int = 256
  out_dim: int = 65536
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> dict[str, jax.Array]:
    """`{"logits": [b, out_dim] float32 projections, "features": [b, d]}`."""
    embedding = self.encoder(x, train=train)["features"]
    h = embedding.astype(self.dtype)
    dense = lambda n, name, bias=True: nn.Dense(
        n, use_bias=bias, dtype=self.dtype, param_dtype=self.param_dtype,
        kernel_init=_HEAD_INIT, name=name)
    for i, width in enumerate(self.hidden_dims):
      h = jax.nn.gelu(dense(width, f"mlp{i}")(h), approximate=False)
    if self.bottleneck_dim > 0:
      h = l2_normalize(dense(self.bottleneck_dim, "bottleneck")(h))
      proj = WeightNormDense(self.out_dim, self.dtype, self.param_dtype,
                             name="last")(h)
    else:
      proj = dense(self.out_dim, "last")(h)
    return {"logits": proj.astype(jnp.float32), "features": embedding}


@models.register_model("dino_net")
def dino_net(num_classes: int, base: str = "small_cnn",
             hidden_dims: Sequence[int] = (2048, 2048),
             bottleneck_dim: int = 256, out_dim: int = 65536,
             dtype: Any = jnp.float32, **kwargs: Any) -> DINONet:
  """A DINO network on the zoo classifier `base` (its kwargs in `kwargs`).

  `num_classes` only sizes the base's unused classification layer (its
  parameters get no gradient); the projection has `out_dim` units.
  """
  if base == "dino_net":
    raise ValueError("model.kwargs.base='dino_net' nests the head; name a "
                     f"zoo classifier: {models.model_names()}")
  encoder = models.get_model(base, num_classes, dtype=dtype, **kwargs)
  return DINONet(encoder=encoder, hidden_dims=tuple(hidden_dims),
                 bottleneck_dim=int(bottleneck_dim), out_dim=int(out_dim),
                 dtype=dtype)

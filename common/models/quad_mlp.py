"""The two-layer MLP of the grokking papers: one-hot operands, x**2 units.

Gromov, "Grokking modular arithmetic" (arXiv:2301.02679) and Doshi et al.,
"To grok or not to grok" (arXiv:2310.13061); official d-doshi/Grokking,
`utils/models.py` (`fcn`, `fcn_norm`):

  h = (U e_a + V e_b),  logits = W (dropout? -> h ** power -> BatchNorm?)

with `e_a, e_b` one-hot vectors of the operands (p each), `U, V` `[N, p]`
(together the first layer's kernel `[2p, N]`), `W` `[p, N]`, no biases, and
both layers initialised N(0, 0.25 / (2N)^(2/3)) as the official code. The
official dropout acts on the first layer's output before the power; its
BatchNorm (`fcn_norm`) after it. A one-hot product is a row gather, so
integer inputs `[b, 2]` are embedded by gathering rows of the kernel (the
same function, ~25% faster on CPU); float inputs `[b, 2p]` (one-hot or any
vectors) are multiplied.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from common.models import registry

Dtype = Any
NORMS = ("none", "batch")


def official_init_std(width: int) -> float:
  """The official `0.25**0.5 / (2 * N)**(1/3)` of both layers."""
  return 0.25**0.5 / (2.0 * width)**(1.0 / 3.0)


class _OperandLayer(nn.Module):
  """`U e_a + V e_b` from a kernel `[2 vocab, N]` (no bias)."""
  vocab: int
  width: int
  kernel_init: Any
  dtype: Dtype
  param_dtype: Dtype

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param("kernel", self.kernel_init,
                        (2 * self.vocab, self.width), self.param_dtype)
    kernel = kernel.astype(self.dtype)
    if jnp.issubdtype(x.dtype, jnp.integer):   # one-hot product = gather
      return kernel[x[:, 0]] + kernel[self.vocab + x[:, 1]]
    return x.astype(self.dtype) @ kernel


@registry.register_model("quad_mlp")
class QuadMLP(nn.Module):
  """`W act(U e_a + V e_b)` with `act(z) = z ** power`.

  Attributes:
    num_classes: outputs p.
    width: hidden neurons N.
    vocab: values per operand (0: `num_classes`).
    power: exponent of the activation (2: the papers' quadratic).
    dropout: rate of the dropout on the first layer's output (train only).
    norm: "none" or "batch" (BatchNorm after the activation, torch's
      momentum 0.1 and eps 1e-5).
    dtype: computation dtype.
    param_dtype: dtype of the parameters.

  Parameters: `fc1/kernel` `[2 vocab, N]` (rows `:vocab` are U^T, the rest
  V^T) and `fc2/kernel` `[N, num_classes]` (W^T).
  """

  num_classes: int
  width: int = 500
  vocab: int = 0
  power: int = 2
  dropout: float = 0.0
  norm: str = "none"
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> dict[str, jax.Array]:
    """Applies the network.

    Args:
      x: int `[b, 2]` operand pairs, or float `[b, 2 vocab]` inputs.
      train: dropout on and BatchNorm on batch statistics.

    Returns:
      "logits" `[b, num_classes]` float32 and "features" `[b, N]` (the
      input of the last layer).
    """
    if self.norm not in NORMS:
      raise ValueError(f"quad_mlp norm={self.norm!r}; allowed: {NORMS}")
    vocab = self.vocab or self.num_classes
    init = nn.initializers.normal(official_init_std(self.width))
    h = _OperandLayer(vocab, self.width, init, self.dtype, self.param_dtype,
                      name="fc1")(x)
    h = nn.Dropout(self.dropout, deterministic=not train)(h)
    h = h ** self.power
    if self.norm == "batch":
      h = nn.BatchNorm(use_running_average=not train, momentum=0.9,
                       epsilon=1e-5, dtype=self.dtype,
                       param_dtype=self.param_dtype, name="norm")(h)
    logits = nn.Dense(self.num_classes, use_bias=False, kernel_init=init,
                      dtype=self.dtype, param_dtype=self.param_dtype,
                      name="fc2")(h)
    return {"logits": logits.astype(jnp.float32), "features": h}

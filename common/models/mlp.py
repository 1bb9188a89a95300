"""A multi-layer perceptron on flattened images.

The smallest model of the zoo, for smoke tests and toy data. It has no
BatchNorm, so its variables hold only `params`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
from common.models import activations
from common.models import registry

Dtype = Any


@registry.register_model("mlp")
class MLP(nn.Module):
  """Flatten -> (Dense -> activation) per hidden size -> Dense.

  Attributes:
    num_classes: number of output logits.
    hidden_sizes: widths of the hidden layers; empty gives a linear model.
    dtype: computation dtype (e.g. `jnp.bfloat16` for mixed precision).
    param_dtype: dtype of the parameters.
    activation: a name of `common.models.activations.ACTIVATIONS`.
  """

  num_classes: int
  hidden_sizes: Sequence[int] = (256, 256)
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  activation: str = "relu"

  # Name of the final Dense, whose input is returned as "features".
  HEAD_NAME: ClassVar[str] = "head"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> dict[str, jax.Array]:
    """Applies the MLP.

    Args:
      x: `[b, h, w, c]` images (any trailing shape is flattened).
      train: unused (no dropout or BatchNorm); kept for the common contract.

    Returns:
      A dict with "logits" `[b, num_classes]` float32 and "features"
      `[b, d]` in `dtype`, the input of the final Dense (`d` is the last
      hidden size, or `h * w * c` without hidden layers).
    """
    del train
    h = jnp.reshape(x, (x.shape[0], -1)).astype(self.dtype)
    for i, width in enumerate(self.hidden_sizes):
      h = nn.Dense(width, dtype=self.dtype, param_dtype=self.param_dtype,
                   name=f"dense{i}")(h)
      h = activations.act(self.activation, i, self.param_dtype)(h)
    logits = nn.Dense(self.num_classes, dtype=self.dtype,
                      param_dtype=self.param_dtype, name=self.HEAD_NAME)(h)
    return {"logits": logits.astype(jnp.float32), "features": h}

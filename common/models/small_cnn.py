"""A small BatchNorm CNN for 8x8 to 32x32 inputs.

Sized to train in seconds on two CPU cores on scikit-learn's 8x8 digits
while exercising everything the big models do (BatchNorm statistics, pooled
features, mixed precision):

  conv3x3(32)-BN-ReLU -> conv3x3(64)-BN-ReLU -> maxpool 2x2
  -> conv3x3(128)-BN-ReLU -> global average pool -> Dense(num_classes)

With the default widths it has `9*c*32 + 9*32*64 + 9*64*128 + 128 * (C + 1)`
parameters plus `2 * (32 + 64 + 128)` BatchNorm scales and biases.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from common.models import activations
from common.models import layers
from common.models import registry

Dtype = Any


@registry.register_model("small_cnn")
class SmallCNN(nn.Module):
  """Three conv-BN-ReLU layers with one 2x2 max-pool, then a linear head.

  Attributes:
    num_classes: number of output logits.
    widths: output channels of the three convolutions; the pool follows the
      second one. The last width is the feature dimension.
    dtype: computation dtype (e.g. `jnp.bfloat16` for mixed precision).
    param_dtype: dtype of the parameters.
    activation: a name of `common.models.activations.ACTIVATIONS` (ReLU
      by default).
  """

  num_classes: int
  widths: Sequence[int] = (32, 64, 128)
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32
  activation: str = "relu"

  HEAD_NAME: ClassVar[str] = "head"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> dict[str, jax.Array]:
    """Applies the network.

    Args:
      x: `[b, h, w, c]` images, `h, w >= 2`.
      train: batch statistics (and their update) if True, running averages
        otherwise.

    Returns:
      A dict with "logits" `[b, num_classes]` float32 and "features"
      `[b, widths[-1]]` in `dtype`, the input of the final Dense.
    """
    h = x.astype(self.dtype)
    for i, width in enumerate(self.widths):
      h = layers.conv(width, 3, dtype=self.dtype,
                      param_dtype=self.param_dtype, name=f"conv{i}")(h)
      h = layers.batch_norm(train, self.dtype, self.param_dtype,
                            name=f"bn{i}")(h)
      h = activations.act(self.activation, i, self.param_dtype)(h)
      if i == 1:
        # One pool halves 8x8 digits to 4x4: enough context for the last
        # conv without shrinking tiny inputs to nothing.
        h = nn.max_pool(h, (2, 2), strides=(2, 2))
    features = layers.global_avg_pool(h)
    logits = nn.Dense(self.num_classes, dtype=self.dtype,
                      param_dtype=self.param_dtype,
                      name=self.HEAD_NAME)(features)
    return {"logits": logits.astype(jnp.float32), "features": features}

"""A small U-Net for dense prediction on CPU (32x32 to 64x64 inputs).

O. Ronneberger, P. Fischer, T. Brox, "U-Net: Convolutional Networks for
Biomedical Image Segmentation", MICCAI 2015 (arXiv:1505.04597), shrunk to a
few CPU minutes: each level is two conv3x3-BN-ReLU; the encoder halves the
resolution by 2x2 max-pooling between levels, the decoder doubles it by a
2x2 stride-2 transposed convolution and concatenates the encoder's map of
the same level. The head is a 1x1 convolution.

Returns `{"logits": [b, h, w, num_classes] float32, "features": [b, h, w,
widths[0]]}`: the features are the last decoder map (the head's input), one
vector per pixel, as the transductive segmentation methods need (RePRI's
classifier on frozen features, SFDA's per-pixel predictions).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from common.models import layers
from common.models import registry

Dtype = Any


class ConvBlock(nn.Module):
  """`repeats` x (conv3x3 -> BatchNorm -> ReLU) at one width."""
  width: int
  repeats: int = 2
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    for i in range(self.repeats):
      x = layers.conv(self.width, 3, name=f"conv{i}", **kw)(x)
      x = nn.relu(layers.batch_norm(train, name=f"bn{i}", **kw)(x))
    return x


@registry.register_model("unet")
class UNet(nn.Module):
  """A U-Net; see the module docstring.

  Attributes:
    num_classes: output channels (classes) per pixel.
    widths: channels of each level, from the full-resolution one down; the
      input's sides must be divisible by `2 ** (len(widths) - 1)`.
    dtype: computation dtype.
    param_dtype: dtype of the parameters.
  """

  num_classes: int
  widths: Sequence[int] = (16, 32, 64)
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  HEAD_NAME: ClassVar[str] = "head"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> dict[str, jax.Array]:
    """Applies the network.

    Args:
      x: `[b, h, w, c]` images.
      train: batch statistics (and their update) if True.

    Returns:
      "logits" `[b, h, w, num_classes]` float32, "features"
      `[b, h, w, widths[0]]`.
    """
    factor = 2 ** (len(self.widths) - 1)
    if x.shape[1] % factor or x.shape[2] % factor:
      raise ValueError(f"unet with {len(self.widths)} levels needs image "
                       f"sides divisible by {factor}, got {x.shape[1:3]}")
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    h = x.astype(self.dtype)
    skips = []
    for i, width in enumerate(self.widths):
      if i:
        h = nn.max_pool(h, (2, 2), strides=(2, 2))
      h = ConvBlock(width, name=f"down{i}", **kw)(h, train)
      skips.append(h)
    for i in reversed(range(len(self.widths) - 1)):
      h = nn.ConvTranspose(self.widths[i], (2, 2), strides=(2, 2),
                           name=f"upsample{i}", **kw)(h)
      h = ConvBlock(self.widths[i], name=f"up{i}", **kw)(
          jnp.concatenate([skips[i], h], axis=-1), train)
    logits = nn.Conv(self.num_classes, (1, 1), name=self.HEAD_NAME, **kw)(h)
    return {"logits": logits.astype(jnp.float32), "features": h}

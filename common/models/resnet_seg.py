"""ResNet-50 backbone + decoder for full-scale dense prediction.

The backbone is torchvision's ResNet (v1.5) of `common.models.resnet`, with
its submodule names (`conv1`, `bn1`, `layer{i}_{j}`) under `backbone`, so
ImageNet weights convert as for the classifier
(`common.convert.torch_to_flax`, prefix `backbone`). The decoder is
DeepLabv3+'s (L.-C. Chen et al., "Encoder-Decoder with Atrous Separable
Convolution for Semantic Image Segmentation", ECCV 2018, arXiv:1802.02611)
without the atrous pyramid: the last stage (stride 32) projected to
`decoder_width` channels by a 1x1 conv-BN-ReLU, bilinearly upsampled to the
first stage's resolution (stride 4), concatenated with that stage projected
to 48 channels, then two 3x3 conv-BN-ReLU. The head is a 1x1 convolution
whose logits are bilinearly upsampled to the input size.

Returns `{"logits": [b, h, w, num_classes] float32, "features": [b, h / 4,
w / 4, decoder_width]}`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from common.models import layers
from common.models import registry
from common.models import resnet

Dtype = Any


class ResNetBackbone(nn.Module):
  """torchvision's ResNet without pooling and fc: every stage's output."""
  stage_sizes: tuple[int, ...] = (3, 4, 6, 3)
  widths: tuple[int, ...] = (64, 128, 256, 512)
  bottleneck: bool = True
  stem_width: int = 64
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> list[jax.Array]:
    """`[b, h, w, 3]` -> stage outputs at strides 4, 8, 16, 32."""
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    return resnet.stem_and_stages(x, train, self.stage_sizes, self.widths,
                                  self.bottleneck, self.stem_width, kw)


def _conv_bn_relu(h: jax.Array, width: int, kernel: int, name: str,
                  train: bool, kw: dict[str, Any]) -> jax.Array:
  h = layers.conv(width, kernel, name=f"{name}_conv",
                  kernel_init=layers.kaiming_normal_fan_out, **kw)(h)
  return nn.relu(layers.batch_norm(train, name=f"{name}_bn", **kw)(h))


def _resize(x: jax.Array, height: int, width: int) -> jax.Array:
  return jax.image.resize(x, (x.shape[0], height, width, x.shape[-1]),
                          "bilinear")


class ResNetSeg(nn.Module):
  """A ResNet backbone with a DeepLabv3+-style decoder (module docstring).

  Attributes:
    num_classes: output channels (classes) per pixel.
    stage_sizes, widths, bottleneck, stem_width: the backbone's
      (`common.models.resnet.ResNet`'s meaning).
    decoder_width: channels of the decoder (the feature dimension).
    dtype: computation dtype.
    param_dtype: dtype of the parameters.
  """

  num_classes: int
  stage_sizes: tuple[int, ...] = (3, 4, 6, 3)
  widths: tuple[int, ...] = (64, 128, 256, 512)
  bottleneck: bool = True
  stem_width: int = 64
  decoder_width: int = 256
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  HEAD_NAME: ClassVar[str] = "head"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> dict[str, jax.Array]:
    """Applies the network.

    Args:
      x: `[b, h, w, 3]` normalised images (sides divisible by 32 keep the
        strides exact; others are rounded up by the convolutions).
      train: batch statistics (and their update) if True.

    Returns:
      "logits" `[b, h, w, num_classes]` float32, "features"
      `[b, ceil(h / 4), ceil(w / 4), decoder_width]`.
    """
    if len(self.stage_sizes) != len(self.widths) or len(self.widths) < 2:
      raise ValueError(f"stage_sizes {self.stage_sizes} and widths "
                       f"{self.widths} must have equal length >= 2")
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    stages = ResNetBackbone(tuple(self.stage_sizes), tuple(self.widths),
                            self.bottleneck, self.stem_width,
                            name="backbone", **kw)(x, train)
    low, high = stages[0], stages[-1]
    high = _conv_bn_relu(high, self.decoder_width, 1, "project", train, kw)
    high = _resize(high, low.shape[1], low.shape[2])
    low = _conv_bn_relu(low, 48, 1, "skip", train, kw)
    h = jnp.concatenate([low, high], axis=-1)
    h = _conv_bn_relu(h, self.decoder_width, 3, "fuse0", train, kw)
    h = _conv_bn_relu(h, self.decoder_width, 3, "fuse1", train, kw)
    logits = nn.Conv(self.num_classes, (1, 1), name=self.HEAD_NAME, **kw)(h)
    logits = _resize(logits.astype(jnp.float32), x.shape[1], x.shape[2])
    return {"logits": logits, "features": h}


@registry.register_model("resnet_seg")
def resnet_seg(num_classes: int, stage_sizes: tuple[int, ...] = (3, 4, 6, 3),
               widths: tuple[int, ...] = (64, 128, 256, 512),
               bottleneck: bool = True, **kwargs: Any) -> ResNetSeg:
  """A `ResNetSeg`; see the class for the arguments (tests use tiny ones)."""
  return ResNetSeg(num_classes=num_classes, stage_sizes=tuple(stage_sizes),
                   widths=tuple(widths), bottleneck=bottleneck, **kwargs)


@registry.register_model("resnet50_seg")
def resnet50_seg(num_classes: int, **kwargs: Any) -> ResNetSeg:
  """ResNet-50 (v1.5) backbone + decoder, the full-scale model."""
  return resnet_seg(num_classes, (3, 4, 6, 3), bottleneck=True, **kwargs)

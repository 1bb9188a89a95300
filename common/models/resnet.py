"""ResNet for ImageNet, layer for layer as torchvision's `ResNet` (v1.5).

Sources:
  * K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image
    Recognition", CVPR 2016 (arXiv:1512.03385).
  * torchvision `torchvision/models/resnet.py`: the layout of the
    `IMAGENET1K_V1` ResNet-50 weights the TTA experiments convert (EATA,
    CoTTA and Tent's ImageNet-C source model).

Structure: conv1 7x7/2 (64) -> bn1 -> ReLU -> max-pool 3x3/2 (pad 1) ->
`layer1..layer4` (`stage_sizes` blocks each, `widths` channels before the
expansion, stride 2 in the first block of layers 2-4) -> global average
pool -> fc. "v1.5": in a `Bottleneck` the stride sits on the 3x3 `conv2`
(not on the first 1x1 conv as in the original paper). A block's shortcut is
`downsample = conv1x1(stride) -> BatchNorm` when the stride or the channels
change, the identity otherwise; the block ends with `relu(out + shortcut)`.
BatchNorm is PyTorch's (eps 1e-5, momentum 0.1, see `layers.batch_norm`).

`resnet50` is `stage_sizes=(3, 4, 6, 3)`, bottleneck blocks, widths
(64, 128, 256, 512) with expansion 4: 25,557,032 parameters for 1000
classes, as torchvision's. `resnet` takes any stage sizes and widths (tests
use a tiny one) and `block="basic"` gives the ResNet-18/34 family.

Initialisation follows torchvision: conv kernels He normal (fan-out), BN
scale 1 / bias 0, fc PyTorch's default U(+-1/sqrt(fan_in)) for the weight
and U(+-1/sqrt(fan_in)) for the bias.

Naming, for `common.convert.torch_to_flax`: torchvision's `layer{i}.{j}`
is the submodule `layer{i}_{j}`, `downsample.0` / `downsample.1` are
`downsample_0` / `downsample_1`; `conv1`, `bn1`, ..., `fc` keep their names.
"""

from __future__ import annotations

from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from common.models import layers
from common.models import registry

Dtype = Any


def _torch_bias_init(fan_in: int):
  """PyTorch Linear's default bias init, U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
  bound = 1.0 / fan_in**0.5
  return lambda key, shape, dtype=jnp.float32: jax.random.uniform(
      key, shape, dtype, -bound, bound)


class Block(nn.Module):
  """torchvision's `BasicBlock` (two 3x3) or `Bottleneck` (1x1-3x3-1x1).

  Attributes:
    width: channels of the block's inner convs (`planes`).
    strides: stride of the 3x3 conv (`conv1` in a basic block, `conv2` in
      a bottleneck) and of the projection.
    bottleneck: Bottleneck (output `4 * width`) or BasicBlock (`width`).
    dtype: computation dtype.
    param_dtype: dtype of the parameters.
  """

  width: int
  strides: int = 1
  bottleneck: bool = True
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    """Maps `[b, h, w, c]` to `[b, h / strides, w / strides, out]`."""
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    conv_kw = dict(kernel_init=layers.kaiming_normal_fan_out, **kw)
    out_channels = self.width * 4 if self.bottleneck else self.width

    def bn(name):
      return layers.batch_norm(train, name=name, **kw)

    if self.bottleneck:
      h = nn.relu(bn("bn1")(layers.conv(self.width, 1, name="conv1",
                                        **conv_kw)(x)))
      h = nn.relu(bn("bn2")(layers.conv(self.width, 3, self.strides,
                                        name="conv2", **conv_kw)(h)))
      h = bn("bn3")(layers.conv(out_channels, 1, name="conv3", **conv_kw)(h))
    else:
      h = nn.relu(bn("bn1")(layers.conv(self.width, 3, self.strides,
                                        name="conv1", **conv_kw)(x)))
      h = bn("bn2")(layers.conv(self.width, 3, name="conv2", **conv_kw)(h))
    shortcut = x
    if self.strides != 1 or x.shape[-1] != out_channels:
      shortcut = layers.conv(out_channels, 1, self.strides,
                             name="downsample_0", **conv_kw)(x)
      shortcut = bn("downsample_1")(shortcut)
    return nn.relu(h + shortcut)


def stem_and_stages(x: jax.Array, train: bool, stage_sizes: tuple[int, ...],
                    widths: tuple[int, ...], bottleneck: bool,
                    stem_width: int, kw: dict[str, Any]) -> list[jax.Array]:
  """torchvision's stem and `layer1..` inside the calling compact module
  (submodules `conv1`, `bn1`, `layer{i}_{j}`): every stage's output, at
  strides 4, 8, 16, 32 (the classifier pools the last; segmentation
  decoders read several)."""
  h = layers.conv(stem_width, 7, 2, name="conv1",
                  kernel_init=layers.kaiming_normal_fan_out,
                  **kw)(x.astype(kw["dtype"]))
  h = nn.relu(layers.batch_norm(train, name="bn1", **kw)(h))
  h = nn.max_pool(h, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
  stages = []
  for i, (size, width) in enumerate(zip(stage_sizes, widths)):
    for j in range(size):
      strides = 2 if i > 0 and j == 0 else 1
      h = Block(width, strides, bottleneck, name=f"layer{i + 1}_{j}",
                **kw)(h, train)
    stages.append(h)
  return stages


class ResNet(nn.Module):
  """torchvision's ResNet; see the module docstring.

  Attributes:
    num_classes: number of output logits.
    stage_sizes: blocks per stage (`layer1`, `layer2`, ...).
    widths: inner channels of each stage.
    bottleneck: Bottleneck blocks (ResNet-50/101/152) or basic blocks.
    stem_width: channels of `conv1`.
    dtype: computation dtype.
    param_dtype: dtype of the parameters.
  """

  num_classes: int
  stage_sizes: tuple[int, ...] = (3, 4, 6, 3)
  widths: tuple[int, ...] = (64, 128, 256, 512)
  bottleneck: bool = True
  stem_width: int = 64
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  HEAD_NAME: ClassVar[str] = "fc"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> dict[str, jax.Array]:
    """Applies the network.

    Args:
      x: `[b, h, w, 3]` normalised images (224x224 for ImageNet).
      train: batch statistics (and their update) if True, running averages
        otherwise.

    Returns:
      A dict with "logits" `[b, num_classes]` float32 and "features"
      `[b, widths[-1] * (4 if bottleneck else 1)]`, the pooled input of fc.
    """
    if len(self.stage_sizes) != len(self.widths) or not self.stage_sizes:
      raise ValueError(
          f"stage_sizes {self.stage_sizes} and widths {self.widths} must be "
          "non-empty and of equal length")
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    h = stem_and_stages(x, train, self.stage_sizes, self.widths,
                        self.bottleneck, self.stem_width, kw)[-1]
    features = layers.global_avg_pool(h)
    logits = nn.Dense(self.num_classes,
                      kernel_init=layers.torch_default_kernel_init,
                      bias_init=_torch_bias_init(features.shape[-1]),
                      name=self.HEAD_NAME, **kw)(features)
    return {"logits": logits.astype(jnp.float32), "features": features}


@registry.register_model("resnet")
def resnet(num_classes: int, stage_sizes: tuple[int, ...] = (3, 4, 6, 3),
           widths: tuple[int, ...] = (64, 128, 256, 512),
           bottleneck: bool = True, **kwargs: Any) -> ResNet:
  """A `ResNet`; see the class for the arguments."""
  return ResNet(num_classes=num_classes, stage_sizes=tuple(stage_sizes),
                widths=tuple(widths), bottleneck=bottleneck, **kwargs)


@registry.register_model("resnet50")
def resnet50(num_classes: int, **kwargs: Any) -> ResNet:
  """torchvision's `resnet50` (v1.5), e.g. for its IMAGENET1K_V1 weights."""
  return resnet(num_classes, (3, 4, 6, 3), bottleneck=True, **kwargs)


@registry.register_model("resnet18")
def resnet18(num_classes: int, **kwargs: Any) -> ResNet:
  """torchvision's `resnet18` (basic blocks)."""
  return resnet(num_classes, (2, 2, 2, 2), bottleneck=False, **kwargs)

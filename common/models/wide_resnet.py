"""Wide ResNet for CIFAR, layer for layer as RobustBench's `WideResNet`.

Sources:
  * S. Zagoruyko, N. Komodakis, "Wide Residual Networks", BMVC 2016
    (arXiv:1605.07146).
  * RobustBench, `robustbench/model_zoo/architectures/wide_resnet.py`
    (itself from TRADES); the "Standard" CIFAR-10 WRN-28-10 checkpoint that
    the TTA experiments load is `WideResNet(depth=28, widen_factor=10)`.

Structure (`n = (depth - 4) / 6` blocks per stage, `k = widen_factor`):
  conv1 3x3(16) -> block1: n x BasicBlock(16k, stride 1)
  -> block2: n x BasicBlock(32k, stride 2) -> block3: n x BasicBlock(64k,
  stride 2) -> bn1 -> ReLU -> average pool -> fc.
A `BasicBlock` is pre-activation; which tensor the shortcut carries depends
on whether the channels change:
  * in == out channels: `x + conv2(drop(relu(bn2(conv1(relu(bn1(x)))))))`,
    the identity carrying the raw `x`;
  * in != out channels: `x' = relu(bn1(x))`, then
    `convShortcut(x') + conv2(drop(relu(bn2(conv1(x')))))`, so the
    projection sees the activated input.
The projection exists only when channels change, whatever the stride.
Dropout (rate `dropout`, the reference's `dropRate`) sits between the two
convs and draws from the "dropout" RNG stream when `train` is True.

Parameter count for WRN-28-10, `C` classes (conv kernels have no bias):
  conv1 3*3*3*16                                           =        432
  block1: (32 + 23,040 + 320 + 230,400 + 2,560)
          + 3 * (320 + 230,400 + 320 + 230,400)             =  1,640,672
  block2: (320 + 460,800 + 640 + 921,600 + 51,200)
          + 3 * (640 + 921,600 + 640 + 921,600)             =  6,968,000
  block3: (640 + 1,843,200 + 1,280 + 3,686,400 + 204,800)
          + 3 * (1,280 + 3,686,400 + 1,280 + 3,686,400)     = 27,862,400
  bn1 2 * 640 = 1,280; fc 640 * C + C
i.e. 36,479,194 for C = 10 (the "36.5M" of the WRN paper), which is what
`sum(p.numel() for p in WideResNet().parameters())` counts for RobustBench's
PyTorch model.

Initialisation follows the reference, which does its own: conv kernels
N(0, 2 / (3 * 3 * out_channels)) (He fan-out), BatchNorm scale 1 / bias 0,
fc weight PyTorch's default U(+-1/sqrt(fan_in)) and fc bias 0.

Naming, for a PyTorch-weights converter: `block{i}.layer.{j}.{attr}` ->
`block{i}_layer{j}/{attr}` (attr in bn1, conv1, bn2, conv2, convShortcut),
top-level `conv1`, `bn1`, `fc` keep their names. Conv weights go
OIHW -> HWIO, `fc.weight` is transposed, BatchNorm `weight`/`bias` become
`scale`/`bias` and `running_mean`/`running_var` the batch_stats
`mean`/`var`. All 3x3 convs pad (1, 1) like PyTorch, so strided maps align.
With this mapping, random weights of RobustBench's WRN-28-10 and WRN-16-4
gave the same logits here to ~1e-6 relative (eval and train mode) when this
module was written.
"""

from __future__ import annotations

from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from common.models import layers
from common.models import registry

Dtype = Any


class BasicBlock(nn.Module):
  """RobustBench's WRN `BasicBlock` (see the module docstring).

  Attributes:
    out_planes: output channels.
    strides: stride of `conv1` and of `convShortcut`.
    dropout: dropout rate between the two convs.
    dtype: computation dtype.
    param_dtype: dtype of the parameters.
  """

  out_planes: int
  strides: int = 1
  dropout: float = 0.0
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    """Maps `[b, h, w, c_in]` to `[b, h / strides, w / strides, out_planes]`."""
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    conv_kw = dict(kernel_init=layers.kaiming_normal_fan_out, **kw)
    equal_in_out = x.shape[-1] == self.out_planes
    a = nn.relu(layers.batch_norm(train, name="bn1", **kw)(x))
    out = layers.conv(self.out_planes, 3, self.strides, name="conv1",
                      **conv_kw)(a)
    out = nn.relu(layers.batch_norm(train, name="bn2", **kw)(out))
    if self.dropout > 0:
      out = nn.Dropout(self.dropout, deterministic=not train)(out)
    out = layers.conv(self.out_planes, 3, name="conv2", **conv_kw)(out)
    if equal_in_out:
      shortcut = x
    else:
      shortcut = layers.conv(self.out_planes, 1, self.strides,
                             name="convShortcut", **conv_kw)(a)
    return shortcut + out


class WideResNet(nn.Module):
  """WRN-depth-widen_factor for 32x32 inputs.

  Attributes:
    num_classes: number of output logits.
    depth: total depth; `(depth - 4)` must be divisible by 6.
    widen_factor: channel multiplier `k`.
    dropout: dropout rate inside every block (0 disables it).
    bias_last: whether `fc` has a bias (RobustBench's `bias_last`).
    dtype: computation dtype (e.g. `jnp.bfloat16` for mixed precision).
    param_dtype: dtype of the parameters.
  """

  num_classes: int
  depth: int = 28
  widen_factor: int = 10
  dropout: float = 0.0
  bias_last: bool = True
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  HEAD_NAME: ClassVar[str] = "fc"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> dict[str, jax.Array]:
    """Applies the network.

    Args:
      x: `[b, h, w, c]` images (32x32 for CIFAR).
      train: batch statistics (and their update) and dropout if True,
        running averages and no dropout otherwise.

    Returns:
      A dict with "logits" `[b, num_classes]` float32 and "features"
      `[b, 64 * widen_factor]` in `dtype`, the pooled `relu(bn1(.))` output
      that `fc` receives.
    """
    if self.depth < 10 or (self.depth - 4) % 6:
      raise ValueError(f"depth must be 6n + 4 with n >= 1, got {self.depth}.")
    n = (self.depth - 4) // 6
    widths = (16 * self.widen_factor, 32 * self.widen_factor,
              64 * self.widen_factor)
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    h = layers.conv(16, 3, name="conv1",
                    kernel_init=layers.kaiming_normal_fan_out,
                    **kw)(x.astype(self.dtype))
    for i, width in enumerate(widths):
      for j in range(n):
        strides = 2 if i > 0 and j == 0 else 1
        h = BasicBlock(width, strides, self.dropout,
                       name=f"block{i + 1}_layer{j}", **kw)(h, train)
    h = nn.relu(layers.batch_norm(train, name="bn1", **kw)(h))
    features = layers.global_avg_pool(h)
    logits = nn.Dense(self.num_classes, use_bias=self.bias_last,
                      kernel_init=layers.torch_default_kernel_init,
                      name=self.HEAD_NAME, **kw)(features)
    return {"logits": logits.astype(jnp.float32), "features": features}


@registry.register_model("wide_resnet")
def wide_resnet(num_classes: int, depth: int = 28, widen_factor: int = 10,
                dropout: float = 0.0, **kwargs: Any) -> WideResNet:
  """A `WideResNet`; see the class for the arguments."""
  return WideResNet(num_classes=num_classes, depth=depth,
                    widen_factor=widen_factor, dropout=dropout, **kwargs)


@registry.register_model("wide_resnet28_10")
def wide_resnet28_10(num_classes: int, **kwargs: Any) -> WideResNet:
  """WRN-28-10 (RobustBench "Standard" architecture for `num_classes=10`)."""
  return wide_resnet(num_classes, depth=28, widen_factor=10, **kwargs)

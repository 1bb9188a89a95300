"""PreAct-ResNet-18 for CIFAR, as used by the official PS-KD code.

Sources:
  * K. He, X. Zhang, S. Ren, J. Sun, "Identity Mappings in Deep Residual
    Networks", ECCV 2016 (arXiv:1603.05027): the pre-activation block.
  * lgcnsai/PS-KD-Pytorch, `models/preact_resnet.py`,
    `CIFAR_ResNet18_preActBasic` (what `--classifier_type ResNet18` builds
    for CIFAR-100 in `models/network.py`): the structure reproduced by
    `variant="pskd"`, the default.
  * kuangliu/pytorch-cifar, `models/preact_resnet.py`, `PreActResNet18`:
    `variant="kuangliu"`.

The PS-KD model is NOT Kuang Liu's PreActResNet18; it differs in two places:

  1. Stem: PS-KD applies conv3x3(64) -> BN -> ReLU; Kuang Liu only the conv.
  2. Identity shortcuts: both blocks compute `a = relu(bn1(x))` and feed `a`
     to the 1x1 projection shortcut when the shape changes. When it does not,
     PS-KD's shortcut is an empty `nn.Sequential` applied to `a`, so the
     residual stream carries the *activated* `a`; Kuang Liu's carries the raw
     `x` (the textbook pre-activation block).

Shared by both: stages of (64, 128, 256, 512) channels, two `PreActBlock`s
each, strides (1, 2, 2, 2), no BatchNorm/ReLU after the last block (the
block outputs are pooled as they are), average pooling (`avg_pool2d(out, 4)`
on the 4x4 map of a 32x32 input, i.e. a global mean), and a biased Linear.

Parameter count for `num_classes=C` (no biases except the head):
  stem conv 3*3*3*64 = 1,728 (+ stem BN 128 for "pskd")
  stage 1: 2 * (128 + 36,864 + 128 + 36,864)                   =   147,968
  stage 2: (128 + 73,728 + 256 + 147,456 + 8,192)
           + (256 + 147,456 + 256 + 147,456)                    =   525,184
  stage 3: (256 + 294,912 + 512 + 589,824 + 32,768)
           + (512 + 589,824 + 512 + 589,824)                    = 2,098,944
  stage 4: (512 + 1,179,648 + 1,024 + 2,359,296 + 131,072)
           + (1,024 + 2,359,296 + 1,024 + 2,359,296)            = 8,392,192
  head 512 * C + C
giving 11,217,444 ("pskd") and 11,217,316 ("kuangliu") for C = 100, the
former equal to `sum(p.numel() ...)` of the PS-KD PyTorch model. The
batch_stats hold a mean and a variance per BatchNorm channel (PyTorch's
`num_batches_tracked` has no counterpart).

Initialisation: the PS-KD model does no initialisation of its own (PyTorch
defaults), so, as agreed for this repository, flax's defaults are used
(lecun_normal kernels, zero biases, BatchNorm scale 1 / bias 0).

Submodules are named after the PyTorch attributes so a converter can map
keys: `layer2.0.shortcut.0.weight` -> `layer2_0/shortcut_0/kernel`,
`layer1.1.bn2.running_mean` -> batch_stats `layer1_1/bn2/mean`,
`linear.weight` -> `linear/kernel` (transposed; conv kernels go OIHW -> HWIO;
BatchNorm `weight` -> `scale`). `tests/common/convert/test_torch_to_flax.py`
converts random weights of both PyTorch layouts with
`common.convert.torch_to_flax` and checks equal logits in eval and train
mode.
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

VARIANTS = ("pskd", "kuangliu")


class PreActBlock(nn.Module):
  """Pre-activation basic block: BN-ReLU-conv3x3-BN-ReLU-conv3x3 + shortcut.

  Attributes:
    planes: output channels.
    strides: stride of the first conv and of the projection shortcut.
    activated_identity: if True (PS-KD), an identity shortcut adds the
      pre-activated input `relu(bn1(x))`; if False (Kuang Liu), the raw `x`.
    dtype: computation dtype.
    param_dtype: dtype of the parameters.
  """

  planes: int
  strides: int = 1
  activated_identity: bool = True
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    """Maps `[b, h, w, c_in]` to `[b, h / strides, w / strides, planes]`."""
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    a = nn.relu(layers.batch_norm(train, name="bn1", **kw)(x))
    if self.strides != 1 or x.shape[-1] != self.planes:
      # Both references project the pre-activated input, not the raw one.
      # `shortcut_0`: the official `shortcut = nn.Sequential(conv)`.
      shortcut = layers.conv(self.planes, 1, self.strides,
                             name="shortcut_0", **kw)(a)
    else:
      shortcut = a if self.activated_identity else x
    out = layers.conv(self.planes, 3, self.strides, name="conv1", **kw)(a)
    out = nn.relu(layers.batch_norm(train, name="bn2", **kw)(out))
    out = layers.conv(self.planes, 3, name="conv2", **kw)(out)
    return out + shortcut


class PreActResNet(nn.Module):
  """CIFAR pre-activation ResNet with four stages of `PreActBlock`s.

  Attributes:
    num_classes: number of output logits.
    stage_sizes: blocks per stage; (2, 2, 2, 2) is PreAct-ResNet-18.
    variant: "pskd" (stem BN-ReLU, activated identity shortcuts) or
      "kuangliu" (neither); see the module docstring.
    dtype: computation dtype (e.g. `jnp.bfloat16` for mixed precision).
    param_dtype: dtype of the parameters.
  """

  num_classes: int
  stage_sizes: Sequence[int] = (2, 2, 2, 2)
  variant: str = "pskd"
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  HEAD_NAME: ClassVar[str] = "linear"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> dict[str, jax.Array]:
    """Applies the network.

    Args:
      x: `[b, h, w, c]` images (32x32 for CIFAR; sides divisible by 8 keep
        every stage's map whole).
      train: batch statistics (and their update) if True, running averages
        otherwise.

    Returns:
      A dict with "logits" `[b, num_classes]` float32 and "features"
      `[b, 512]` in `dtype`, the pooled output of the last block, which the
      final Dense receives.
    """
    if self.variant not in VARIANTS:
      raise ValueError(
          f"Unknown variant {self.variant!r}; expected one of {VARIANTS}.")
    pskd = self.variant == "pskd"
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    h = layers.conv(64, 3, name="conv1", **kw)(x.astype(self.dtype))
    if pskd:
      h = nn.relu(layers.batch_norm(train, name="bn1", **kw)(h))
    for stage, num_blocks in enumerate(self.stage_sizes):
      planes = 64 * 2**stage
      for block in range(num_blocks):
        strides = 2 if stage > 0 and block == 0 else 1
        h = PreActBlock(planes, strides, activated_identity=pskd,
                        name=f"layer{stage + 1}_{block}", **kw)(h, train)
    features = layers.global_avg_pool(h)
    logits = nn.Dense(self.num_classes, name=self.HEAD_NAME, **kw)(features)
    return {"logits": logits.astype(jnp.float32), "features": features}


@registry.register_model("preact_resnet18")
def preact_resnet18(num_classes: int, **kwargs: Any) -> PreActResNet:
  """PreAct-ResNet-18 (PS-KD's `CIFAR_ResNet18_preActBasic` by default).

  Args:
    num_classes: number of output logits.
    **kwargs: further `PreActResNet` attributes (`variant`, `dtype`, ...).

  Returns:
    The unbound module.
  """
  return PreActResNet(num_classes=num_classes, stage_sizes=(2, 2, 2, 2),
                      **kwargs)


@registry.register_model("preact_resnet")
def preact_resnet(num_classes: int,
                  stage_sizes: Sequence[int] = (2, 2, 2, 2),
                  **kwargs: Any) -> PreActResNet:
  """A PreAct-ResNet with `stage_sizes` blocks per stage (18: 2-2-2-2)."""
  return PreActResNet(num_classes=num_classes, stage_sizes=tuple(stage_sizes),
                      **kwargs)

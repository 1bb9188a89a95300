"""Building blocks shared by the model zoo, with PyTorch's conventions.

The reference architectures (PS-KD's PreAct-ResNet-18, RobustBench's
WideResNet) are PyTorch models, and later issues load their weights. The
helpers here therefore reproduce what PyTorch does where flax differs:

* BatchNorm: PyTorch `momentum=0.1` is flax `momentum=0.9` (flax keeps
  `momentum * old + (1 - momentum) * new`), `eps=1e-5`. One difference
  remains: PyTorch updates `running_var` with the unbiased batch variance,
  flax with the biased one (a factor `m / (m - 1)` with `m = b * h * w`
  values per channel, negligible for the batch sizes used here).
* Convolutions: PyTorch pads `k // 2` on every side. Flax's "SAME" pads
  asymmetrically for stride 2 on even inputs (0 before, 1 after), which would
  shift every strided feature map by a pixel relative to the PyTorch model,
  so the padding is given explicitly.
* Initialisers: the PyTorch defaults, for the models whose reference relies
  on them (see each model's docstring for which one it uses).

Sources:
  PyTorch `torch.nn.BatchNorm2d`, `torch.nn.Conv2d`, `torch.nn.Linear` docs.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Dtype = Any
Initializer = jax.nn.initializers.Initializer

# PyTorch's BatchNorm2d(momentum=0.1, eps=1e-5), written in flax's convention.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5

# PyTorch's default Linear/Conv weight init, kaiming_uniform(a=sqrt(5)), is
# U(-1/sqrt(fan_in), 1/sqrt(fan_in)): a variance of 1 / (3 * fan_in).
torch_default_kernel_init = jax.nn.initializers.variance_scaling(
    1.0 / 3.0, "fan_in", "uniform")

# `weight.normal_(0, sqrt(2 / (k * k * out_channels)))`, the WRN init
# (He et al. 2015, fan-out mode). Untruncated, as in PyTorch.
kaiming_normal_fan_out = jax.nn.initializers.variance_scaling(
    2.0, "fan_out", "normal")


def batch_norm(train: bool, dtype: Dtype, param_dtype: Dtype,
               name: str | None = None) -> nn.BatchNorm:
  """A BatchNorm over the channel axis with PyTorch's hyper-parameters.

  Args:
    train: if True, normalise with batch statistics and update the running
      averages in the `batch_stats` collection; else use the running averages.
    dtype: computation dtype (statistics are still reduced in float32).
    param_dtype: dtype of `scale` and `bias`.
    name: submodule name, chosen to mirror the PyTorch attribute.

  Returns:
    An unbound `nn.BatchNorm` to be called on `[b, h, w, c]` inputs.
  """
  return nn.BatchNorm(
      use_running_average=not train,
      momentum=BN_MOMENTUM,
      epsilon=BN_EPSILON,
      dtype=dtype,
      param_dtype=param_dtype,
      name=name)


def conv(features: int,
         kernel_size: int,
         strides: int = 1,
         *,
         dtype: Dtype,
         param_dtype: Dtype,
         kernel_init: Initializer = nn.linear.default_kernel_init,
         name: str | None = None) -> nn.Conv:
  """A bias-free square convolution padded like PyTorch's `padding=k // 2`.

  Args:
    features: output channels.
    kernel_size: odd kernel side `k`.
    strides: stride in both spatial dimensions.
    dtype: computation dtype.
    param_dtype: dtype of the kernel.
    kernel_init: kernel initialiser.
    name: submodule name, chosen to mirror the PyTorch attribute.

  Returns:
    An unbound `nn.Conv` mapping `[b, h, w, c]` to
    `[b, ceil(h / strides), ceil(w / strides), features]`.
  """
  pad = kernel_size // 2
  return nn.Conv(
      features,
      (kernel_size, kernel_size),
      strides=(strides, strides),
      padding=((pad, pad), (pad, pad)),
      use_bias=False,
      dtype=dtype,
      param_dtype=param_dtype,
      kernel_init=kernel_init,
      name=name)


def global_avg_pool(x: jax.Array) -> jax.Array:
  """Means `[b, h, w, c]` over space to `[b, c]`.

  The references use `F.avg_pool2d(out, k)` with `k` the final feature-map
  side for 32x32 inputs, which is this global mean; taking the mean directly
  also keeps other input sizes working.
  """
  return jnp.mean(x, axis=(1, 2))

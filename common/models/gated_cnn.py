"""A plain conv-BN-ReLU network whose output channels are gated per input.

Built for dynamic channel pruning (FTWT: "Fire Together Wire Together: A
Dynamic Pruning Approach with Self-Supervised Mask Prediction", Elkerdawy
et al., CVPR 2022, arXiv:2110.08232; official code
https://github.com/selkerdawy/FTWT, `utils/layers.py: ConvWithMask`), and
for the static channel-pruning baseline it is compared with, in one model so
that both share parameters, FLOPs accounting and a pretrained checkpoint.
Two models: `gated_cnn` (VGG-style, the CPU studies and the VGG-16
configuration) and `gated_resnet` (the official CIFAR ResNet-56 with the
official gate placement).

Layer `l` (`ConvWithMask` in the official code):

  out_l  = relu(bn(conv(x_l)))                          [b, h, w, C_l]
  stat_l = max over (h, w) of |out_l|                   [b, C_l]
  logit_l = Dense(softmax(avgpool(sg(x_l))))             [b, C_l]
  gate_l = 1[logit_l > 0]      ("dynamic", no gradient)
         = top-k L1 filters   ("static_l1", same for every input)
         = 1                  ("none")
  x_{l+1} = out_l * gate_l     (then an optional 2x2 max-pool)

`sg` is `stop_gradient` when `decoupled` (the official default mode): the
mask predictor learns only from its own loss, the backbone only from the
task loss. The predictor (`MaskPredictor`) is built in every mode, so a
network pretrained with `gating="none"` has exactly the parameters of the
gated one and can be fine-tuned into it.

FLOPs (multiply-accumulates, the official `thop` convention): conv `l`
costs `h_l * w_l * k^2 * a_{l-1} * a_l` for `a_l` active output channels
(`a_{-1}` = input channels) per input, plus the Dense head. The mask
predictors are not counted (as in the official code); their cost,
`sum_l C_{l-1} * C_l`, is in `predictor_flops`.

Outputs: `logits [b, K]`, `features [b, C_L]`, `flops [b]` (this input's
MACs), `flops_ratio [b]` (over the ungated network's), and per layer the
tuples `gate_logits`, `gate_stats`, `gates` of `[b, C_l]` arrays.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from common.models import layers
from common.models import registry

Dtype = Any
GATINGS = ("none", "dynamic", "static_l1")


def channel_criterion(h: jax.Array) -> jax.Array:
  """The official heat-map criterion: spatial max of `|h|`.

  Args:
    h: `[b, h, w, C]` activations.

  Returns:
    `[b, C]` float32, `max_{h,w} |h|`.
  """
  return jnp.max(jnp.abs(h.astype(jnp.float32)), axis=(1, 2))


def l1_topk_mask(kernel: jax.Array, keep: float) -> jax.Array:
  """Static L1-norm channel pruning (Li et al. 2017): the `round(keep * C)`
  output filters of largest L1 norm.

  Args:
    kernel: `[kh, kw, c_in, C]` conv kernel.
    keep: kept fraction in `(0, 1]` (static).

  Returns:
    `[C]` float32 0/1 mask with exactly `max(1, round(keep * C))` ones.
  """
  norms = jnp.sum(jnp.abs(kernel.astype(jnp.float32)), axis=(0, 1, 2))
  c = norms.shape[0]
  k = max(1, min(c, int(round(keep * c))))
  _, idx = jax.lax.top_k(norms, k)
  return jnp.zeros((c,), jnp.float32).at[idx].set(1.0)


class MaskPredictor(nn.Module):
  """The official `MaskPredictorNN` with `embedding=-1`: global average
  pool, optional softmax over channels, then a linear map to `C` logits."""

  features: int
  softmax: bool = True
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """`[b, h, w, c_in]` -> `[b, features]` float32 logits."""
    pooled = jnp.mean(x.astype(jnp.float32), axis=(1, 2))
    if self.softmax:
      pooled = jax.nn.softmax(pooled, axis=-1)
    return nn.Dense(self.features, param_dtype=self.param_dtype,
                    name="dense")(pooled)


class _Gates:
  """Per-layer bookkeeping shared by the gated models: gate logits, criteria,
  gates, per-input FLOPs (the official `prev`: active input channels)."""

  def __init__(self, b: int, in_channels: int):
    self.active_in = jnp.full((b,), float(in_channels), jnp.float32)
    self.flops = jnp.zeros((b,), jnp.float32)
    self.dense_flops = 0.0
    self.predictor_flops = 0
    self.logits, self.stats, self.gates = [], [], []

  def outputs(self, b: int, head_flops: float) -> dict[str, Any]:
    flops = self.flops + head_flops
    dense = self.dense_flops + head_flops
    return {"flops": flops, "flops_ratio": flops / dense,
            "predictor_flops_ratio": jnp.full(
                (b,), self.predictor_flops / dense, jnp.float32),
            "gate_logits": tuple(self.logits),
            "gate_stats": tuple(self.stats), "gates": tuple(self.gates)}


def _gated_conv(m: nn.Module, book: _Gates, x_in: jax.Array, width: int,
                strides: int, train: bool, index: int, relu: bool = True,
                residual: jax.Array | None = None,
                kernel_init: Any = nn.linear.default_kernel_init
                ) -> jax.Array:
  """conv-BN(-+residual)(-ReLU), criterion, predictor, gate: `ConvWithMask`.

  Called from `m`'s compact `__call__` (the submodules are `m`'s:
  `conv<index>`, `bn<index>`, `mask<index>`).
  """
  b = x_in.shape[0]
  conv = layers.conv(width, 3, strides, dtype=m.dtype,
                     param_dtype=m.param_dtype,
                     kernel_init=kernel_init, name=f"conv{index}")
  h = layers.batch_norm(train, m.dtype, m.param_dtype,
                        name=f"bn{index}")(conv(x_in))
  if residual is not None:
    h = h + residual
  if relu:
    h = nn.relu(h)
  book.stats.append(jax.lax.stop_gradient(channel_criterion(h)))
  pred_in = jax.lax.stop_gradient(x_in) if m.decoupled else x_in
  logit = MaskPredictor(width, m.softmax, m.param_dtype,
                        name=f"mask{index}")(pred_in)
  if m.gating == "dynamic":
    gate = jax.lax.stop_gradient((logit > 0).astype(jnp.float32))
  elif m.gating == "static_l1":
    kernel = conv.variables["params"]["kernel"]
    gate = jnp.broadcast_to(
        jax.lax.stop_gradient(l1_topk_mask(kernel, m.keep)), (b, width))
  else:
    gate = jnp.ones((b, width), jnp.float32)
  h = h * gate[:, None, None, :].astype(h.dtype)
  active = jnp.sum(gate, axis=-1)
  area = h.shape[1] * h.shape[2]
  book.flops = book.flops + area * 9.0 * book.active_in * active
  book.dense_flops += area * 9.0 * x_in.shape[-1] * width
  book.predictor_flops += x_in.shape[-1] * width
  book.active_in = active
  book.logits.append(logit)
  book.gates.append(gate)
  return h


def _check(m: nn.Module) -> None:
  if m.gating not in GATINGS:
    raise ValueError(f"{type(m).__name__} gating={m.gating!r}; allowed "
                     f"{GATINGS}")
  if not 0.0 < m.keep <= 1.0:
    raise ValueError(f"{type(m).__name__} keep={m.keep}; allowed (0, 1]")


@registry.register_model("gated_cnn")
class GatedCNN(nn.Module):
  """Conv-BN-ReLU layers with per-input (or static) output-channel gates.

  Attributes:
    num_classes: number of logits.
    widths: output channels of the 3x3 convolutions.
    pool_after: indices of the layers followed by a 2x2 max-pool.
    gating: one of `GATINGS` (static: structure, not a hyperparameter).
    keep: kept fraction of filters per layer with `gating="static_l1"`.
    decoupled: stop the predictor's gradient into the backbone (official
      `decoupled`; False is the official `joint` mode).
    softmax: softmax over the pooled channels before the predictor's Dense
      (official default `--softmax 1`).
    dtype, param_dtype: compute and parameter dtypes.
  """

  num_classes: int
  widths: Sequence[int] = (32, 32, 64, 64)
  pool_after: Sequence[int] = (1,)
  gating: str = "dynamic"
  keep: float = 1.0
  decoupled: bool = True
  softmax: bool = True
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  HEAD_NAME: ClassVar[str] = "head"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> dict[str, Any]:
    """Applies the network.

    Args:
      x: `[b, h, w, c]` images.
      train: BatchNorm on batch statistics (and updating them) if True.

    Returns:
      The dict described in the module docstring.
    """
    _check(self)
    h = x.astype(self.dtype)
    book = _Gates(h.shape[0], h.shape[-1])
    for i, width in enumerate(self.widths):
      h = _gated_conv(self, book, h, width, 1, train, i)
      if i in tuple(self.pool_after):
        h = nn.max_pool(h, (2, 2), strides=(2, 2))
    features = layers.global_avg_pool(h)
    logits = nn.Dense(self.num_classes, dtype=self.dtype,
                      param_dtype=self.param_dtype,
                      name=self.HEAD_NAME)(features)
    return {"logits": logits.astype(jnp.float32), "features": features,
            **book.outputs(h.shape[0], float(self.widths[-1]
                                             * self.num_classes))}


@registry.register_model("gated_resnet")
class GatedResNet(nn.Module):
  """The official CIFAR ResNet (`models/cifar/resnet.py`, depth 6n+2, basic
  blocks 16/32/64, option-A shortcuts: 2x2 average pool + zero channels)
  with every conv gated as the official `fuse_masking_resnet`: the stem, and
  in each block conv1 (after its ReLU) and conv2 (before the residual sum,
  `--gtafterblock False`: criterion on the BN output).

  Attributes: as `GatedCNN`, with `depth` instead of `widths`/`pool_after`.
  """

  num_classes: int
  depth: int = 56
  gating: str = "dynamic"
  keep: float = 1.0
  decoupled: bool = True
  softmax: bool = True
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  HEAD_NAME: ClassVar[str] = "head"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> dict[str, Any]:
    """`[b, h, w, c]` images -> the dict of the module docstring."""
    _check(self)
    if (self.depth - 2) % 6:
      raise ValueError(f"gated_resnet depth={self.depth}; allowed 6n+2")
    n = (self.depth - 2) // 6
    h = x.astype(self.dtype)
    book = _Gates(h.shape[0], h.shape[-1])
    conv = functools.partial(_gated_conv, self, book, train=train,
                             kernel_init=layers.kaiming_normal_fan_out)
    h = conv(h, 16, 1, index=0)
    index = 1
    for stage, planes in enumerate((16, 32, 64)):
      for block in range(n):
        strides = 2 if stage > 0 and block == 0 else 1
        identity = h
        if strides != 1 or identity.shape[-1] != planes:
          identity = nn.avg_pool(identity, (2, 2), strides=(2, 2))
          identity = jnp.pad(identity, ((0, 0), (0, 0), (0, 0),
                                        (0, planes - identity.shape[-1])))
        out = conv(h, planes, strides, index=index)
        out = conv(out, planes, 1, index=index + 1, relu=False)
        h = nn.relu(out + identity)
        index += 2
    features = layers.global_avg_pool(h)
    logits = nn.Dense(self.num_classes, dtype=self.dtype,
                      param_dtype=self.param_dtype,
                      name=self.HEAD_NAME)(features)
    return {"logits": logits.astype(jnp.float32), "features": features,
            **book.outputs(h.shape[0], float(64 * self.num_classes))}

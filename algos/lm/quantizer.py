"""Group-wise uniform weight quantisation with learnable clipping.

The fake quantiser of ApiQ / ULB-SAPR (`apiq/quant_linear.py`,
`UniformAffineQuantizer` with `lwc=True`, asymmetric with a zero point, as
the official scripts run it), written for JAX, plus the exact storage of
the quantised weights (packed codes) for the memory benchmark.

Paper: Enhancing Ultra-Low-Bit Quantization of Large Language Models
Through Saliency-Aware Partial Retraining, arXiv:2504.13932.
Official code: https://github.com/TokuyuSou/ULB-SAPR (commit eb4cb8d).

Layout: a weight `w` is a torch-style `[out, in]` matrix (a flax kernel's
transpose); it is cut row-major into groups of `group_size` consecutive
input weights, `G = out * in / group_size` groups, each with its clipping
factors `up`, `low` `[G, 1]` (learnable weight clipping, LWC; init 4.0):

  xmax = sigmoid(up) max(g), xmin = sigmoid(low) min(g)
  scale = clip((xmax - xmin) / (2^b - 1), 1e-5, 1e4)
  zero = round(clip(-xmin / scale, -1e4, 1e4))
  code = clip(round(w / scale) + zero, 0, 2^b - 1)
  w_hat = (code - zero) scale

`round` is round-half-to-even in both torch and JAX; in `fake_quant` it is
a straight-through estimator, and the zero point's round has no gradient
(as torch's). Without LWC the factors are 1 (plain min-max RTN).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

BITS = (2, 3, 4)
LWC_INIT = 4.0            # the official init of the clipping factors
_CLIPMIN = 1e-5


def check(bits: int, group_size: int, in_features: int | None = None) -> None:
  """One-line errors for unsupported bit widths and group sizes."""
  if bits not in BITS:
    raise ValueError(f"quantiser bits={bits!r} is not supported; allowed: "
                     f"{BITS}")
  if group_size < 1:
    raise ValueError(f"quantiser group_size={group_size} must be >= 1")
  if in_features is not None and in_features % group_size:
    raise ValueError(
        f"quantiser group_size={group_size} does not divide the input "
        f"width {in_features}; allowed: a divisor of {in_features}")


def num_groups(shape: tuple[int, int], group_size: int) -> int:
  """G of a `[out, in]` weight."""
  return shape[0] * shape[1] // group_size


def init_clipping(shape: tuple[int, int], group_size: int,
                  value: float = LWC_INIT) -> dict[str, jax.Array]:
  """`{"up", "low"}` `[G, 1]` LWC factors (sigmoid(4) = 0.982)."""
  g = num_groups(shape, group_size)
  return {"up": jnp.full((g, 1), value, jnp.float32),
          "low": jnp.full((g, 1), value, jnp.float32)}


def scale_and_zero(w: jax.Array, clip: dict[str, jax.Array] | None,
                   bits: int, group_size: int
                   ) -> tuple[jax.Array, jax.Array]:
  """(`scale` `[G, 1]`, rounded `zero` `[G, 1]`) of `w` `[out, in]`;
  `clip` None = no LWC."""
  x = w.reshape(-1, group_size)
  xmax, xmin = jnp.max(x, -1, keepdims=True), jnp.min(x, -1, keepdims=True)
  if clip is not None:
    xmax = jax.nn.sigmoid(clip["up"]) * xmax
    xmin = jax.nn.sigmoid(clip["low"]) * xmin
  scale = jnp.clip((xmax - xmin) / (2 ** bits - 1), _CLIPMIN, 1e4)
  zero = jnp.round(jax.lax.stop_gradient(
      jnp.clip(-xmin / scale, -1e4, 1e4)))
  return scale, zero


def codes(w: jax.Array, clip: dict[str, jax.Array] | None, bits: int,
          group_size: int) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(integer codes `[out, in]` uint8 in [0, 2^b - 1], scale, zero)."""
  scale, zero = scale_and_zero(w, clip, bits, group_size)
  x = w.reshape(-1, group_size)
  q = jnp.clip(jnp.round(x / scale) + zero, 0, 2 ** bits - 1)
  return q.reshape(w.shape).astype(jnp.uint8), scale, zero


def fake_quant(w: jax.Array, clip: dict[str, jax.Array] | None, bits: int,
               group_size: int) -> jax.Array:
  """The dequantised `w_hat` `[out, in]`, differentiable in `clip`
  (rounding as a straight-through estimator)."""
  scale, zero = scale_and_zero(w, clip, bits, group_size)
  x = w.reshape(-1, group_size) / scale
  x = x + jax.lax.stop_gradient(jnp.round(x) - x)
  q = jnp.clip(x + zero, 0, 2 ** bits - 1)
  return ((q - zero) * scale).reshape(w.shape)


# ---------------------------------------------------------------- storage
def pack(values: np.ndarray, bits: int) -> np.ndarray:
  """Packs non-negative integers `< 2^bits` into a uint8 bit stream of
  `ceil(n * bits / 8)` bytes (little-endian bit order)."""
  v = np.asarray(values, np.uint8).reshape(-1)
  stream = (v[:, None] >> np.arange(bits, dtype=np.uint8)) & 1
  return np.packbits(stream.reshape(-1), bitorder="little")


def unpack(packed: np.ndarray, bits: int, n: int) -> np.ndarray:
  """The inverse of `pack`: `n` integers."""
  stream = np.unpackbits(packed, bitorder="little")[:n * bits]
  return (stream.reshape(n, bits) << np.arange(bits, dtype=np.uint8)).sum(
      -1).astype(np.uint8)


def packed_layer(w: Any, clip: Any, bits: int, group_size: int,
                 lora: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
  """What a quantised linear stores: packed `bits`-bit codes, float16
  scales, packed `bits`-bit zero points (GPTQ's layout) and, with `lora`,
  its float16 `A`, `B`."""
  q, scale, zero = jax.device_get(codes(jnp.asarray(w), clip, bits,
                                        group_size))
  if zero.min() < 0 or zero.max() > 2 ** bits - 1:
    raise ValueError(f"zero points outside [0, {2 ** bits - 1}]: a group "
                     f"without both signs cannot be stored in {bits} bits")
  out = {"codes": pack(q, bits), "scales": np.asarray(scale, np.float16),
         "zeros": pack(np.asarray(zero, np.uint8), bits)}
  for key, value in (lora or {}).items():
    out[f"lora_{key}"] = np.asarray(value, np.float16)
  return out


def stored_bytes(shape: tuple[int, int], bits: int, group_size: int,
                 lora_rank: int = 0) -> int:
  """Bytes of `packed_layer` for a `[out, in]` weight, by formula."""
  n, g = shape[0] * shape[1], num_groups(shape, group_size)
  lora = 2 * lora_rank * (shape[0] + shape[1])
  return math.ceil(n * bits / 8) + 2 * g + math.ceil(g * bits / 8) + lora

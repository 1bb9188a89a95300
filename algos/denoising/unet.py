"""The Noise2Noise U-Net that Noise2Score trains (model `n2n_unet`).

The official Noise2Score code (cubeyoung/Noise2Score, `models/networks.py`,
class `UNet`, "Custom U-Net architecture for Noise2Noise (see Appendix,
Table 2)") uses the U-Net of Lehtinen et al. 2018: `depth` max-pool levels
of `width` 3x3 convolutions, a decoder of `2 width` channels with stride-2
transposed convolutions and skip concatenations, a 64-32-`out` head (`head`), leaky
ReLU 0.1, no normalisation. (The official class applies one `_block2` and one
`_block5` module at every level, sharing their weights; we give each level
its own, as the Noise2Noise paper's table.) `width` 48 and `depth` 5 are the official
values; the CPU configs shrink both. Inputs need `h, w` divisible by
`2 ** depth`.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from common.models import registry


def _act(x: jax.Array) -> jax.Array:
  return nn.leaky_relu(x, 0.1)


class N2NUNet(nn.Module):
  """`{"output": [b, h, w, out_channels]}` of images `[b, h, w, c]`."""
  out_channels: int = 1
  width: int = 48
  depth: int = 5
  head: tuple[int, int] = (64, 32)
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False
               ) -> dict[str, jax.Array]:
    del train
    if x.shape[1] % 2 ** self.depth or x.shape[2] % 2 ** self.depth:
      raise ValueError(f"n2n_unet with depth={self.depth} needs h, w "
                       f"divisible by {2 ** self.depth}; got {x.shape[1:3]}")

    def conv(h, ch, name):
      return _act(nn.Conv(ch, (3, 3), dtype=self.dtype, name=name)(h))

    def pool(h):
      return nn.max_pool(h, (2, 2), (2, 2))

    def up(h, ch, name):
      return nn.ConvTranspose(ch, (3, 3), (2, 2), padding="SAME",
                              dtype=self.dtype, name=name)(h)

    w = self.width
    h = conv(x.astype(self.dtype), w, "enc_conv0")
    skips = [x.astype(self.dtype)]
    for i in range(1, self.depth + 1):
      # Level 1 has two convolutions, the others one (the official blocks).
      h = conv(h, w, f"enc_conv{i}")
      h = pool(h)
      if i < self.depth:
        skips.append(h)
    h = conv(h, w, "enc_conv_bottom")
    h = up(h, w, "upsample_bottom")
    for i in range(self.depth - 1, -1, -1):
      h = jnp.concatenate([h, skips[i]], axis=-1)
      if i == 0:
        break
      h = conv(h, 2 * w, f"dec_conv{i}a")
      h = conv(h, 2 * w, f"dec_conv{i}b")
      h = up(h, 2 * w, f"upsample{i}")
    h = conv(h, self.head[0], "dec_conv0a")
    h = conv(h, self.head[1], "dec_conv0b")
    out = nn.Conv(self.out_channels, (3, 3), dtype=self.dtype,
                  name="dec_conv0c")(h)
    return {"output": out.astype(jnp.float32)}


@registry.register_model("n2n_unet")
def n2n_unet(num_classes: int = 0, **kwargs: Any) -> N2NUNet:
  del num_classes   # a denoiser: no classes
  if "head" in kwargs:
    kwargs["head"] = tuple(kwargs["head"])
  return N2NUNet(**kwargs)

"""A small Vision Transformer (ViT) for 8x8 to 32x32 images.

Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for Image
Recognition at Scale", ICLR 2021 (arXiv:2010.11929), in its pre-norm layout
(as timm's `VisionTransformer`, the backbone of DeiT and of the CRReLU
paper's ViT experiments):

  patches (p x p conv, stride p) -> + learned position embedding, [CLS]
  -> depth x [x + MHA(LN(x)); x + MLP(LN(x))] -> LN -> [CLS] (or mean)
  -> Dense(num_classes)

The MLP is `Dense(mlp_ratio * dim) -> activation -> Dense(dim)`, the
activation chosen by name (`common.models.activations`: GELU as in ViT by
default; `crrelu`, `relu`, ...). Sized for CPU: digits 8x8 with 2x2 patches
give 16 tokens. Dropout (`dropout`, on the MLP and the residual branches)
is off by default.
"""

from __future__ import annotations

from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from common.models import activations
from common.models import registry

Dtype = Any


class EncoderBlock(nn.Module):
  """Pre-norm transformer block; `[b, n, d] -> [b, n, d]`."""

  num_heads: int
  mlp_ratio: float = 2.0
  activation: str = "gelu"
  dropout: float = 0.0
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    dim = x.shape[-1]
    h = nn.LayerNorm(name="ln1", **kw)(x)
    h = nn.MultiHeadDotProductAttention(num_heads=self.num_heads, name="attn",
                                        **kw)(h, h)
    x = x + nn.Dropout(self.dropout)(h, deterministic=not train)
    h = nn.LayerNorm(name="ln2", **kw)(x)
    h = nn.Dense(int(self.mlp_ratio * dim), name="fc1", **kw)(h)
    h = activations.act(self.activation, "", self.param_dtype)(h)
    h = nn.Dropout(self.dropout)(h, deterministic=not train)
    h = nn.Dense(dim, name="fc2", **kw)(h)
    return x + nn.Dropout(self.dropout)(h, deterministic=not train)


@registry.register_model("vit")
class ViT(nn.Module):
  """A small ViT; see the module docstring.

  Attributes:
    num_classes: number of output logits.
    patch_size: side of the square patches (divides the image side).
    dim: token width.
    depth: number of encoder blocks.
    num_heads: attention heads (divides `dim`).
    mlp_ratio: hidden width of the MLP over `dim`.
    activation: the MLP's activation, a name of
      `common.models.activations.ACTIVATIONS`.
    pool: "cls" (the [CLS] token) or "mean" (mean of the patch tokens).
    dropout: dropout rate of the MLP and residual branches (train only).
    dtype: computation dtype.
    param_dtype: dtype of the parameters.
  """

  num_classes: int
  patch_size: int = 2
  dim: int = 64
  depth: int = 4
  num_heads: int = 4
  mlp_ratio: float = 2.0
  activation: str = "gelu"
  pool: str = "cls"
  dropout: float = 0.0
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  HEAD_NAME: ClassVar[str] = "head"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> dict[str, jax.Array]:
    """Applies the network.

    Args:
      x: `[b, h, w, c]` images, `h` and `w` multiples of `patch_size`.
      train: dropout on if True.

    Returns:
      A dict with "logits" `[b, num_classes]` float32 and "features"
      `[b, dim]`, the normalised pooled token (input of the head).
    """
    if self.pool not in ("cls", "mean"):
      raise ValueError(f"vit pool={self.pool!r}; allowed ('cls', 'mean')")
    activations.check_activation(self.activation)
    b, height, width, _ = x.shape
    p = self.patch_size
    if height % p or width % p:
      raise ValueError(f"vit patch_size={p} does not divide the {height}x"
                       f"{width} input")
    kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    h = nn.Conv(self.dim, (p, p), strides=(p, p), padding="VALID",
                name="patch_embed", **kw)(x.astype(self.dtype))
    h = h.reshape(b, -1, self.dim)
    cls = self.param("cls_token", nn.initializers.zeros, (1, 1, self.dim),
                     self.param_dtype)
    h = jnp.concatenate([jnp.broadcast_to(cls, (b, 1, self.dim)).astype(
        self.dtype), h], axis=1)
    pos = self.param("pos_embed", nn.initializers.normal(0.02),
                     (1, h.shape[1], self.dim), self.param_dtype)
    h = h + pos.astype(self.dtype)
    for i in range(self.depth):
      h = EncoderBlock(self.num_heads, self.mlp_ratio, self.activation,
                       self.dropout, name=f"block{i}", **kw)(h, train)
    h = nn.LayerNorm(name="ln", **kw)(h)
    features = h[:, 0] if self.pool == "cls" else jnp.mean(h[:, 1:], axis=1)
    logits = nn.Dense(self.num_classes, name=self.HEAD_NAME, **kw)(features)
    return {"logits": logits.astype(jnp.float32), "features": features}

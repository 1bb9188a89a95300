"""ABMIL: attention-based multiple-instance pooling (Ilse et al. 2018).

The model of AEM's official code (dazhangyu123/AEM,
`architecture/transformer.py: ABMIL`, `architecture/network.py:
DimReduction, Classifier_1fc`), here over batches of padded bags:

  h_i  = relu(W_r x_i)                          (DimReduction, no bias)
  s_i  = w^T (tanh(V h_i + c) * sigmoid(U h_i + d)) + e   (gated attention)
  a    = softmax over the bag's valid instances of s
  z    = sum_i a_i h_i,   logits = W_c z + b_c   (Classifier_1fc)

`attention="plain"` drops the sigmoid gate (Ilse et al.'s plain attention,
the official `DAttention`'s scoring). The input is a dict
`{"instances": [b, n, d], "instance_mask": [b, n] bool}`; padded instances
get no attention weight.
"""

from __future__ import annotations

from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from common.models import registry

Dtype = Any
NEG_INF = -1e30


def masked_attention(scores: jax.Array, mask: jax.Array) -> jax.Array:
  """`[b, n]` softmax of `scores` over the true entries of `mask`."""
  scores = jnp.where(mask, scores.astype(jnp.float32), NEG_INF)
  return jax.nn.softmax(scores, axis=-1) * mask


@registry.register_model("abmil")
class ABMIL(nn.Module):
  """Gated-attention MIL pooling and a linear bag classifier.

  Attributes:
    num_classes: bag classes (the official code uses 2 logits for binary).
    inner_dim: width of the instance embedding (official `D_inner`: 128
      for 384-d SSL features, 256 for 512-d ones).
    attention_dim: hidden width of the attention network (official 128).
    attention: "gated" (ABMIL) or "plain" (no sigmoid gate).
    dropout: dropout rate before the classifier (official `droprate` 0).
    dtype, param_dtype: computation and parameter dtypes.
  """

  num_classes: int
  inner_dim: int = 128
  attention_dim: int = 128
  attention: str = "gated"
  dropout: float = 0.0
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  HEAD_NAME: ClassVar[str] = "classifier"

  @nn.compact
  def __call__(self, bag: dict[str, jax.Array], train: bool
               ) -> dict[str, jax.Array]:
    """Applies the network.

    Args:
      bag: `instances` `[b, n, d]` and `instance_mask` bool `[b, n]`.
      train: dropout on if True.

    Returns:
      "logits" `[b, num_classes]` float32, "features" `[b, inner_dim]` (the
      pooled bag embedding), "attention_scores" `[b, n]` float32 (the
      pre-softmax scores; padded entries are meaningless) and "attention"
      `[b, n]` float32 (weights over valid instances, 0 at padding).
    """
    if self.attention not in ("gated", "plain"):
      raise ValueError(f"abmil attention={self.attention!r}; allowed "
                       "'gated' or 'plain'")
    dense = lambda n, name, bias=True: nn.Dense(
        n, use_bias=bias, dtype=self.dtype, param_dtype=self.param_dtype,
        name=name)
    x, mask = bag["instances"].astype(self.dtype), bag["instance_mask"]
    h = nn.relu(dense(self.inner_dim, "reduce", bias=False)(x))
    gate = jnp.tanh(dense(self.attention_dim, "attention_v")(h))
    if self.attention == "gated":
      gate = gate * nn.sigmoid(dense(self.attention_dim, "attention_u")(h))
    scores = dense(1, "attention_w")(gate)[..., 0].astype(jnp.float32)
    weights = masked_attention(scores, mask)
    pooled = jnp.einsum("bn,bnd->bd", weights.astype(self.dtype), h)
    pooled = nn.Dropout(self.dropout, deterministic=not train)(pooled)
    logits = dense(self.num_classes, self.HEAD_NAME)(pooled)
    return {"logits": logits.astype(jnp.float32), "features": pooled,
            "attention_scores": scores, "attention": weights}

"""A zoo backbone with a linear embedding head, for metric learning.

Metric-learning losses (N-pair, triplet, ECAML's energy confusion) read an
embedding `W f + b` of the backbone's feature `f` (the official ECAML
GoogLeNet's `fc_embedding` on `pool5/7x7_s1`). Any registered classifier
serves as the backbone (its own `features`; its logits head is unused).
Registered as `embedding_net`:

  config.model.name = "embedding_net"
  config.model.kwargs = {"backbone": "mlp",
                         "backbone_kwargs": {"hidden_sizes": (256, 256)},
                         "embedding_dim": 64}

`num_classes` (the training classes) is ignored: the head's width is
`embedding_dim`, not the number of classes, so the model serves unseen
classes at test time.
"""

from __future__ import annotations

from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from common.models import registry

Dtype = Any


@registry.register_model("embedding_net")
class EmbeddingNet(nn.Module):
  """Backbone -> Dense(embedding_dim) named `embed`.

  Attributes:
    num_classes: unused (kept for the zoo's constructor signature).
    backbone: a registered model name; its "features" feed the head.
    backbone_kwargs: the backbone's constructor arguments.
    embedding_dim: width of the embedding.
    dtype, param_dtype: computation and parameter dtypes.
  """
  num_classes: int
  backbone: str = "mlp"
  backbone_kwargs: Any = None
  embedding_dim: int = 64
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  HEAD_NAME: ClassVar[str] = "embed"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> dict[str, jax.Array]:
    """Returns "embedding" float32 `[b, embedding_dim]`, "features" `[b, d]`
    (the backbone's, the head's input) and "logits" (= the embedding, for
    the harness's default eval outputs)."""
    body = registry.MODELS.get(self.backbone)(
        num_classes=1, dtype=self.dtype, param_dtype=self.param_dtype,
        name="backbone", **dict(self.backbone_kwargs or {}))
    features = body(x, train=train)["features"]
    features = features.reshape(features.shape[0], -1)
    emb = nn.Dense(self.embedding_dim, dtype=self.dtype,
                   param_dtype=self.param_dtype, name=self.HEAD_NAME)(features)
    emb = emb.astype(jnp.float32)
    return {"embedding": emb, "logits": emb, "features": features}

"""A zoo backbone with a cosine classifier and a projection MLP (SimGCD).

SimGCD (Wen et al., arXiv:2211.11727; CVMI-Lab/SimGCD `model.py`
`DINOHead`) and the methods built on it (LegoGCD, Happy) put two heads on
the backbone's feature `f`:

  logits      `normalize(f) @ normalize(W).T`: a weight-normalised linear
              layer without bias whose norm is fixed to 1
              (`norm_last_layer`), i.e. cosine similarities in [-1, 1];
              methods divide them by a temperature (0.1).
  projection  an MLP `f -> hidden -> ... -> bottleneck` with GELU, for the
              contrastive losses (the methods L2-normalise it).

Any registered classifier serves as the backbone (its own `features`; its
logits head is unused). Registered as `discovery_head`:

  config.model.name = "discovery_head"
  config.model.kwargs = {"backbone": "small_cnn",
                         "backbone_kwargs": {"widths": (32, 64, 128)},
                         "hidden_dim": 256, "proj_dim": 64, "nlayers": 3}
"""

from __future__ import annotations

from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from common.models import registry

Dtype = Any


def _normalize(x: jax.Array, axis: int = -1, eps: float = 1e-12) -> jax.Array:
  """`x / max(||x||, eps)` (torch's `F.normalize`)."""
  norm = jnp.linalg.norm(x, axis=axis, keepdims=True)
  return x / jnp.maximum(norm, eps)


class CosineClassifier(nn.Module):
  """`normalize(x) @ normalize(kernel).T`, kernel `[K, d]` (no bias)."""
  num_classes: int
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (self.num_classes, x.shape[-1]), self.param_dtype)
    return (_normalize(x.astype(jnp.float32))
            @ _normalize(kernel.astype(jnp.float32)).T)


@registry.register_model("discovery_head")
class DiscoveryHead(nn.Module):
  """Backbone -> {cosine logits, projection}.

  Attributes:
    num_classes: clusters of the cosine classifier (old + new classes).
    backbone: a registered model name; its "features" feed both heads.
    backbone_kwargs: the backbone's constructor arguments.
    hidden_dim: width of the projection MLP's hidden layers (SimGCD 2048).
    proj_dim: output width of the projection (SimGCD's bottleneck, 256).
    nlayers: Dense layers of the projection MLP (SimGCD 3).
    dtype: computation dtype.
    param_dtype: parameter dtype.
  """
  num_classes: int
  backbone: str = "small_cnn"
  backbone_kwargs: Any = None
  hidden_dim: int = 2048
  proj_dim: int = 256
  nlayers: int = 3
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  HEAD_NAME: ClassVar[str] = "classifier"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> dict[str, jax.Array]:
    """Applies backbone and heads.

    Returns:
      "logits" float32 `[b, num_classes]` (cosines), "features" `[b, d]`
      (the backbone's), "projection" float32 `[b, proj_dim]`.
    """
    kwargs = dict(self.backbone_kwargs or {})
    body = registry.MODELS.get(self.backbone)(
        num_classes=1, dtype=self.dtype, param_dtype=self.param_dtype,
        name="backbone", **kwargs)
    features = body(x, train=train)["features"]
    h = features.reshape(features.shape[0], -1)
    init = nn.initializers.truncated_normal(0.02)
    for i in range(max(self.nlayers, 1)):
      last = i == max(self.nlayers, 1) - 1
      h = nn.Dense(self.proj_dim if last else self.hidden_dim,
                   dtype=self.dtype, param_dtype=self.param_dtype,
                   kernel_init=init, name=f"proj{i}")(h)
      if not last:
        h = nn.gelu(h, approximate=False)
    logits = CosineClassifier(self.num_classes, self.param_dtype,
                              name=self.HEAD_NAME)(features)
    return {"logits": logits, "features": features,
            "projection": h.astype(jnp.float32)}

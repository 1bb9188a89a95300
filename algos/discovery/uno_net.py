"""UNO's network: a zoo backbone, a known-class head and novel-class heads.

UNO (Fini et al., "A Unified Objective for Novel Class Discovery", ICCV 2021,
arXiv:2108.08536; DonkeyShot21/UNO) and the methods built on it (CRKD,
kleinzcy/Cr-KD-NCD `rKD.py` class `Net`, `model/model_utils.py`) use

* `head_lab`: prototypes without bias on the L2-normalised backbone features,
  one per known class (cosine logits `[b, num_labeled]`);
* `head_unlab`: `num_heads` independent heads, each an MLP (Linear, BN,
  ReLU, Linear) into a `proj_dim` space, L2-normalised, then prototypes, one
  per novel class (cosine logits `[b, num_heads, num_unlabeled]`).

The prototypes are re-normalised to unit length before every step in the
official code (`normalize_prototypes`, no gradient through it); here the
methods project them after every optimizer update (`normalize_prototypes`),
which is the same sequence of weights.

Config: `model.name = "uno_net"`, `model.kwargs = {"base": "small_cnn",
"num_labeled": 5, "num_unlabeled": 5, "num_heads": 4, "hidden_dim": ...,
"proj_dim": ..., <the base model's kwargs>}`. The run's `num_classes` must
be `num_labeled` (supervised pretraining on the known classes) or
`num_labeled + num_unlabeled` (discovery), so both stages build the same
parameter tree and the discovery run starts from the pretrained one.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from common import models
from common.models import layers

PROTOTYPE_PREFIXES = ("head_lab", "proto_")


def l2_normalize(x: jax.Array, axis: int = -1) -> jax.Array:
  """`x / max(||x||, 1e-12)` along `axis` (torch's F.normalize)."""
  norm = jnp.sqrt(jnp.sum(jnp.square(x), axis=axis, keepdims=True))
  return x / jnp.maximum(norm, 1e-12)


class UnlabHeads(nn.Module):
  """`num_heads` MLP projectors with prototypes: `[b, d] -> [b, H, K]`."""

  num_unlabeled: int
  num_heads: int
  hidden_dim: int
  proj_dim: int

  @nn.compact
  def __call__(self, feats: jax.Array, train: bool) -> jax.Array:
    logits = []
    for h in range(self.num_heads):
      z = nn.Dense(self.hidden_dim, name=f"fc1_{h}")(feats)
      z = layers.batch_norm(train, jnp.float32, jnp.float32,
                            name=f"bn_{h}")(z)
      z = nn.Dense(self.proj_dim, name=f"fc2_{h}")(nn.relu(z))
      logits.append(nn.Dense(self.num_unlabeled, use_bias=False,
                             name=f"proto_{h}")(l2_normalize(z)))
    return jnp.stack(logits, axis=1)


class UNONet(nn.Module):
  """Backbone + `head_lab` + `head_unlab` (see the module docstring)."""

  backbone: nn.Module
  num_classes: int           # the run's: num_labeled (+ num_unlabeled)
  num_labeled: int
  num_unlabeled: int
  num_heads: int = 4
  hidden_dim: int = 2048
  proj_dim: int = 256

  @nn.compact
  def __call__(self, x: jax.Array, train: bool, unlab: bool = True
               ) -> dict[str, jax.Array]:
    """`logits` `[b, num_labeled]` (known-class head), `features` `[b, d]`
    and, unless `unlab=False` (a teacher), `logits_unlab` `[b, H, K]`."""
    feats = self.backbone(x, train=train)["features"].astype(jnp.float32)
    out = {"features": feats,
           "logits": nn.Dense(self.num_labeled, use_bias=False,
                              name="head_lab")(l2_normalize(feats))}
    if unlab:
      out["logits_unlab"] = UnlabHeads(
          self.num_unlabeled, self.num_heads, self.hidden_dim, self.proj_dim,
          name="head_unlab")(feats, train)
    return out


@models.register_model("uno_net")
def uno_net(num_classes: int, base: str = "small_cnn", num_labeled: int = 0,
            num_unlabeled: int = 0, num_heads: int = 4, hidden_dim: int = 2048,
            proj_dim: int = 256, **kwargs: Any) -> UNONet:
  """UNO's network on the registered backbone `base` (kwargs: its own).

  Without `num_labeled` / `num_unlabeled` the run's classes are split in
  two, the first `num_classes - num_classes // 2` known.
  """
  if not num_labeled and not num_unlabeled:
    num_unlabeled = num_classes // 2
    num_labeled = num_classes - num_unlabeled
  if num_labeled < 1 or num_unlabeled < 1:
    raise ValueError(f"uno_net needs model.kwargs.num_labeled >= 1 and "
                     f"num_unlabeled >= 1, got {num_labeled}, {num_unlabeled}")
  if num_classes not in (num_labeled, num_labeled + num_unlabeled):
    raise ValueError(
        f"uno_net: the data has {num_classes} classes; allowed "
        f"num_labeled={num_labeled} (pretraining on the known classes) or "
        f"num_labeled + num_unlabeled={num_labeled + num_unlabeled}")
  if base == "uno_net":
    raise ValueError("model.kwargs.base='uno_net' nests the wrapper; name a "
                     f"zoo classifier: {models.model_names()}")
  # The backbone's own classifier is never called: one logit keeps it tiny.
  return UNONet(backbone=models.get_model(base, 1, **kwargs),
                num_classes=num_classes, num_labeled=num_labeled, num_unlabeled=num_unlabeled,
                num_heads=num_heads, hidden_dim=hidden_dim, proj_dim=proj_dim)


def normalize_prototypes(params: Any) -> Any:
  """`params` with every prototype matrix (`head_lab`, `proto_<h>` kernels
  `[d, K]`) scaled to unit-length columns."""
  def visit(node, is_proto):
    if hasattr(node, "items"):
      return {k: visit(v, is_proto or k.startswith(PROTOTYPE_PREFIXES))
              for k, v in node.items()}
    return l2_normalize(node, axis=0) if is_proto else node
  return visit(params, False)


def without_unlab_heads(tree: Any) -> Any:
  """`tree` (params or model state) without the `head_unlab` subtree."""
  return {k: v for k, v in tree.items() if k != "head_unlab"}


def fresh_unlab_heads(model: UNONet, rng: jax.Array, feat_dim: int
                      ) -> dict[str, Any]:
  """Newly initialised `head_unlab` variables (`params`, `batch_stats`)."""
  heads = UnlabHeads(model.num_unlabeled, model.num_heads, model.hidden_dim,
                     model.proj_dim, parent=None)
  return dict(heads.init(
      rng, jnp.zeros((1, feat_dim), jnp.float32), train=False))

"""The two-tower retrieval model of Yao et al. (CIKM 2021), Sec. 3 / Fig. 1.

Self-supervised Learning for Large-scale Item Recommendations, Yao, Yi,
Cheng, Yu, Chen, Menon, Hong, Chi, Tjoa, Kang, Ettinger, arXiv:2007.12865.
No official code (Google-internal, TensorFlow): built from the paper.

Each tower embeds its categorical features (one table per feature),
concatenates the embeddings and maps them through an MLP to an
L2-normalised vector, so `query . item` is the cosine similarity `s(x, y)`
of the paper. A masked item feature (the SSL augmentation) is replaced by a
learned per-feature default embedding (the paper's "default embedding").
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from common.models import registry


class Tower(nn.Module):
  """Categorical features `[b, F]` -> unit vectors `[b, out_dim]`."""

  vocab: Sequence[int]
  embed_dim: int
  hidden: Sequence[int]
  out_dim: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, feats: jax.Array, mask: jax.Array | None = None
               ) -> jax.Array:
    """`feats` int `[b, F]`, `mask` bool `[b, F]` (True = masked)."""
    if feats.shape[-1] != len(self.vocab):
      raise ValueError(f"the tower has {len(self.vocab)} features "
                       f"(vocab {tuple(self.vocab)}), got {feats.shape[-1]}")
    init = nn.initializers.normal(self.embed_dim ** -0.5)
    # One table for all features (row offsets per feature): the same as a
    # table per feature, with one random draw at init.
    offsets = np.cumsum((0,) + tuple(self.vocab[:-1])).astype(np.int32)
    table = self.param("embeddings", init, (int(sum(self.vocab)),
                                            self.embed_dim))
    default = self.param("default_embedding", init,
                         (len(self.vocab), self.embed_dim))
    h = table[feats.astype(jnp.int32) + offsets]               # [b, F, E]
    if mask is not None:
      h = jnp.where(mask[..., None], default[None], h)
    h = h.reshape(h.shape[0], -1).astype(self.dtype)
    for i, width in enumerate(self.hidden):
      h = nn.relu(nn.Dense(width, dtype=self.dtype, name=f"dense{i}")(h))
    h = nn.Dense(self.out_dim, dtype=self.dtype, name="out")(h)
    h = h.astype(jnp.float32)
    return h / jnp.maximum(jnp.linalg.norm(h, axis=-1, keepdims=True), 1e-6)


@registry.register_model("two_tower")
class TwoTower(nn.Module):
  """Query and item towers.

  Called on a dict with any of `query` int `[b, Fq]`, `item` int `[b, F]`,
  `item_mask` bool `[b, F]`; returns `query` / `item` `[b, out_dim]` for
  the towers it was given, and with both `logits` `[b]` = the cosine
  similarity of each row's pair (and `features` = the item embedding).

  Attributes:
    num_classes: unused (the registry's constructor argument).
    item_vocab, query_vocab: vocabulary size of each feature.
    embed_dim: width of every embedding table.
    hidden: MLP widths of each tower.
    out_dim: embedding dimension.
    dtype: computation dtype.
  """

  num_classes: int = 0
  item_vocab: Sequence[int] = (2000, 40, 160, 200, 6, 6)
  query_vocab: Sequence[int] = (500, 40)
  embed_dim: int = 16
  hidden: Sequence[int] = (64,)
  out_dim: int = 32
  dtype: Any = jnp.float32

  def setup(self):
    kw = dict(embed_dim=self.embed_dim, hidden=tuple(self.hidden),
              out_dim=self.out_dim, dtype=self.dtype)
    self.item_tower = Tower(tuple(self.item_vocab), **kw)
    self.query_tower = Tower(tuple(self.query_vocab), **kw)

  def __call__(self, inputs: dict[str, jax.Array], train: bool = False
               ) -> dict[str, jax.Array]:
    del train
    out = {}
    if "item" in inputs:
      out["item"] = self.item_tower(inputs["item"], inputs.get("item_mask"))
      out["features"] = out["item"]
    if "query" in inputs:
      out["query"] = self.query_tower(inputs["query"])
    if "item" in inputs and "query" in inputs:
      out["logits"] = jnp.sum(out["query"] * out["item"], -1)
    return out

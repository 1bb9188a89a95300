"""A small differentiable PRF reformulator over a sparse (BM25) index.

LoL's reformulators (zycdev/LoL `modeling.py`) read `[CLS] q [SEP] p1
[SEP] ... pk [SEP]` with BERT and write a query vector in the retrieval
space: a vocabulary-sized sparse vector for uniCOIL (`SparseMlmDqr`:
max-pooled MLM logits, ReLU, L2-normalised) or the ANCE space
(`DenseDqr`: a projection of [CLS], LayerNorm). Ours keeps the interface
at CPU scale for the BM25 index of `common.data.prf_corpus`:

* every text is a bag of words: the query's term counts and each feedback
  document's BM25 row, L2-normalised, embedded by one term-embedding table
  `E [V, H]`, plus a type embedding (query / document) and a rank
  embedding of the document's feedback position;
* a pre-norm transformer over the `1 + K` tokens (padded feedback slots
  masked), so each document is read in the context of the query and of
  the other feedback documents (relevant ones agree with each other);
* the query vector, a gated Rocchio with learned term weights:
  `q' = a(h_q) q / |q| + sum_i g_i (d_i / |d_i|) * softplus(t)`, the gate
  `g_i = sigmoid(w . [h_i, cos(q, d_i), mean_j cos(d_i, d_j)])` of the
  document's state and its similarity to the query and to the other
  feedback documents (it can switch off irrelevant feedback), `a` the
  weight kept on the original query, `t [V]` a learned per-term weight;
  `q'` is L2-normalised (the official sparse `--norm_power 2`).

Called on `{"query": [b, V], "fb": [b, K, V], "fb_mask": bool [b, K]}`,
returns `query_vector [b, V]`, `gates [b, K]` (0 on padded slots) and
`features [b, H]` (the query token's final state).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from common.models import registry


def _unit(x: jax.Array) -> jax.Array:
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-9)


class _Block(nn.Module):
  hidden: int
  heads: int
  dtype: Any

  @nn.compact
  def __call__(self, x, mask):
    h = nn.LayerNorm(dtype=self.dtype)(x)
    h = nn.MultiHeadDotProductAttention(num_heads=self.heads,
                                        dtype=self.dtype)(h, h, mask=mask)
    x = x + h
    h = nn.LayerNorm(dtype=self.dtype)(x)
    h = nn.Dense(2 * self.hidden, dtype=self.dtype)(h)
    return x + nn.Dense(self.hidden, dtype=self.dtype)(nn.gelu(h))


@registry.register_model("prf_reformulator")
class PRFReformulator(nn.Module):
  """Query + feedback documents -> a query vector over the vocabulary.

  Attributes:
    num_classes: unused (the registry's constructor argument).
    vocab_size: V, the index's vocabulary.
    hidden: H, token width.
    num_layers, num_heads: the transformer over `1 + K` tokens.
    max_feedback: the largest K (rank embeddings).
    dtype: computation dtype.
  """

  num_classes: int = 0
  vocab_size: int = 1000
  hidden: int = 64
  num_layers: int = 2
  num_heads: int = 4
  max_feedback: int = 10
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, inputs: dict[str, jax.Array], train: bool = False
               ) -> dict[str, jax.Array]:
    del train
    q, fb, mask = inputs["query"], inputs["fb"], inputs["fb_mask"]
    b, k, v = fb.shape
    if v != self.vocab_size or q.shape[-1] != self.vocab_size:
      raise ValueError(f"prf_reformulator: vocab_size={self.vocab_size} but "
                       f"query {q.shape} / fb {fb.shape}")
    if k > self.max_feedback:
      raise ValueError(f"prf_reformulator: {k} feedback slots > "
                       f"max_feedback={self.max_feedback}")
    qn, dn = _unit(q.astype(jnp.float32)), _unit(fb.astype(jnp.float32))
    embed = self.param("embed", nn.initializers.normal(1.0),
                       (self.vocab_size, self.hidden))
    types = self.param("types", nn.initializers.normal(0.02),
                       (2, self.hidden))
    ranks = self.param("ranks", nn.initializers.normal(0.02),
                       (self.max_feedback, self.hidden))
    xq = (qn @ embed + types[0])[:, None]
    xd = dn @ embed + types[1] + ranks[:k]
    x = jnp.concatenate([xq, xd], 1).astype(self.dtype)       # [b, 1+K, H]
    keep = jnp.concatenate([jnp.ones((b, 1), bool), mask], 1)
    attn_mask = nn.make_attention_mask(keep, keep)
    for _ in range(self.num_layers):
      x = _Block(self.hidden, self.num_heads, self.dtype)(x, attn_mask)
    h = nn.LayerNorm(dtype=self.dtype)(x).astype(jnp.float32)
    # The gate also sees two similarities: to the query and to the other
    # feedback documents (relevant ones agree with each other).
    sim_q = jnp.einsum("bv,bkv->bk", qn, dn)
    sim_d = jnp.einsum("bkv,bjv->bkj", dn, dn) * mask[:, None]
    sim_d = (jnp.sum(sim_d, -1) - jnp.where(mask, 1.0, 0.0)) / jnp.maximum(
        jnp.sum(mask, -1, keepdims=True) - 1.0, 1.0)
    feats = jnp.concatenate([h[:, 1:], sim_q[..., None], sim_d[..., None]],
                            -1)
    gates = jax.nn.sigmoid(nn.Dense(1, name="gate")(feats)[..., 0])
    gates = jnp.where(mask, gates, 0.0)                       # [b, K]
    keep_q = jax.nn.softplus(nn.Dense(1, name="keep")(h[:, 0])[..., 0]
                             + 0.5413)                        # ~1 at init
    term = jax.nn.softplus(self.param("term", nn.initializers.constant(
        0.5413), (self.vocab_size,)))                         # ~1 at init
    expansion = jnp.einsum("bk,bkv->bv", gates, dn) * term
    vec = _unit(keep_q[:, None] * qn + expansion)
    return {"query_vector": vec, "gates": gates, "features": h[:, 0]}

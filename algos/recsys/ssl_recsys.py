"""Self-supervised learning for two-tower item recommendation.

Paper: Self-supervised Learning for Large-scale Item Recommendations, Yao,
Yi, Cheng, Yu, Chen, Menon, Hong, Chi, Tjoa, Kang, Ettinger, CIKM 2021,
arXiv:2007.12865. No official code (Google-internal TensorFlow): built from
the paper's text; details we could not check against it are marked
"(verify)".

* Main task (Sec. 4, after Yi et al. 2019): batch softmax over the in-batch
  items with the logQ correction, `s_c(q_i, v_j) = s(q_i, v_j) / tau -
  logq_weight * log P_j`, `P_j` the item's share of the training pairs,
  `L_main = mean_i CE(s_c(q_i, .), i)`. Cosine similarity `s`.
* SSL task (Sec. 3.1, Eq. 1): two augmentations `h, g` of the same items,
  encoded by the (shared) item tower, `L_self = -mean_i log
  exp(s(z_i, z'_i)/tau_s) / sum_j exp(s(z_i, z'_j)/tau_s)`.
* Augmentation (Sec. 3.2): complementary feature masks (`h` masks a set of
  features, `g` the rest), masked features take a learned default
  embedding. Random Feature Masking (RFM): a uniformly random half of the
  features. Correlated Feature Masking (CFM): a seed feature uniformly at
  random, plus the features of highest mutual information with it, half of
  the features in all; MI of every feature pair is computed once from the
  training data (`feature_mi_matrix`). Per-example masks (verify: the paper
  may draw one pattern per batch). The paper's second stage, dropout of
  multi-valued features, has no input here (our features are single-valued).
* Multi-task (Sec. 3.3): `L = L_main + alpha L_self`, the item tower shared;
  SSL items drawn uniformly from the catalogue (`ssl_items="uniform"`, the
  paper's heterogeneous sample distribution) or the main batch's items
  (`"batch"`).

`masking="none"` is the supervised baseline (no SSL term computed).
`alpha`, both temperatures and `logq_weight` are traced: sweeping them
never recompiles. The MI matrix lives in `method_state["mi"]`.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp

from common import config as config_lib
from common.core import method as method_lib

MASKINGS = ("none", "rfm", "cfm")
SSL_ITEMS = ("uniform", "batch")
TRACED = ("alpha", "tau", "ssl_tau", "logq_weight")


def in_batch_softmax_loss(query: jax.Array, item: jax.Array,
                          log_q: jax.Array, tau: jax.Array,
                          logq_weight: jax.Array) -> jax.Array:
  """Batch softmax with the logQ correction.

  Args:
    query, item: unit vectors `[b, d]`; row `i` is a positive pair.
    log_q: `[b]` log sampling probability of each in-batch item.
    tau: temperature; logq_weight: 1 = corrected, 0 = plain batch softmax.

  Returns:
    The mean cross-entropy of each query against the batch's items.
  """
  logits = query @ item.T / tau - logq_weight * log_q[None, :]
  logp = jax.nn.log_softmax(logits, axis=-1)
  return -jnp.mean(jnp.diagonal(logp))


def ssl_contrastive_loss(z1: jax.Array, z2: jax.Array,
                         tau: jax.Array) -> jax.Array:
  """The paper's Eq. 1: InfoNCE of `z1 [b, d]` against the in-batch `z2`."""
  logp = jax.nn.log_softmax(z1 @ z2.T / tau, axis=-1)
  return -jnp.mean(jnp.diagonal(logp))


def _sorted_entropy(codes: jax.Array) -> jax.Array:
  """Plug-in entropy (nats) of the values of int `codes` `[n]`."""
  n = codes.shape[0]
  s = jnp.sort(codes)
  run = jnp.cumsum(jnp.concatenate([jnp.zeros(1, jnp.int32),
                                    (s[1:] != s[:-1]).astype(jnp.int32)]))
  p = jax.ops.segment_sum(jnp.ones(n, jnp.float32), run, num_segments=n) / n
  return -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)),
                            0.0))


def feature_mi_matrix(feats: jax.Array, vocab: Sequence[int]) -> jax.Array:
  """Plug-in mutual information (nats) of every pair of features.

  `MI(f, g) = H(f) + H(g) - H(f, g)` of the empirical distribution
  (sklearn's `mutual_info_score`); each entropy counts the runs of the
  sorted values (or value pairs), so the cost is `F^2 n log n` whatever the
  vocabularies.

  Args:
    feats: int `[n, F]`, feature `f` in `[0, vocab[f])`.
    vocab: the vocabulary size of each feature (static; a pair is coded
      as `a * max(vocab) + b` in int32).

  Returns:
    `[F, F]` (the diagonal holds the entropies).
  """
  v = int(max(vocab))
  if v * v >= 2 ** 31:
    raise ValueError(f"feature_mi_matrix: vocabularies up to {v} overflow "
                     "int32 pair codes (max 46340)")
  feats = feats.astype(jnp.int32)
  codes = feats[:, :, None] * v + feats[:, None, :]           # [n, F, F]
  num = feats.shape[1]
  joint = jax.vmap(_sorted_entropy, in_axes=1, out_axes=0)(
      codes.reshape(codes.shape[0], num * num)).reshape(num, num)
  h = jnp.diagonal(joint)
  return h[:, None] + h[None, :] - joint


def random_feature_mask(rng: jax.Array, batch: int, num_features: int,
                        num_masked: int) -> jax.Array:
  """RFM: bool `[batch, F]`, `num_masked` uniformly random features a row."""
  scores = jax.random.uniform(rng, (batch, num_features))
  ranks = jnp.argsort(jnp.argsort(scores, axis=-1), axis=-1)
  return ranks < num_masked


def correlated_feature_mask(rng: jax.Array, mi: jax.Array, batch: int,
                            num_masked: int) -> jax.Array:
  """CFM: bool `[batch, F]`: a uniform seed feature and the `num_masked -
  1` features of highest MI with it (ties to the lower index)."""
  num = mi.shape[0]
  seed = jax.random.randint(rng, (batch,), 0, num)
  score = mi[seed]                                            # [b, F]
  score = jnp.where(jax.nn.one_hot(seed, num, dtype=bool), jnp.inf, score)
  order = jnp.argsort(-score, axis=-1, stable=True)
  ranks = jnp.argsort(order, axis=-1)
  return ranks < num_masked


def feature_masks(rng: jax.Array, masking: str, mi: jax.Array, batch: int,
                  num_features: int) -> jax.Array:
  """The first view's mask (half the features, rounded down)."""
  k = num_features // 2
  if masking == "rfm":
    return random_feature_mask(rng, batch, num_features, k)
  return correlated_feature_mask(rng, mi, batch, k)


@method_lib.register_method("ssl_recsys")
def make(method_config: dict[str, Any]) -> method_lib.Method:
  """The method; see the module docstring for the config keys."""
  masking = method_config.get("masking", "cfm")
  ssl_items = method_config.get("ssl_items", "uniform")
  mi_examples = int(method_config.get("mi_examples", 8192))
  if masking not in MASKINGS:
    raise ValueError(f"ssl_recsys: masking={masking!r}; allowed {MASKINGS}")
  if ssl_items not in SSL_ITEMS:
    raise ValueError(f"ssl_recsys: ssl_items={ssl_items!r}; allowed "
                     f"{SSL_ITEMS}")

  def hparams(cfg, run):
    del run
    return {k: float(cfg.get(k, d)) for k, d in zip(
        TRACED, (0.0, 0.1, 0.1, 1.0))}

  def init(rng, ctx):
    if masking != "cfm":
      return {}
    if ctx.sample is None:
      raise ValueError("ssl_recsys with masking='cfm' computes feature MI "
                       "from the training data: it needs a generator source")
    feats = ctx.sample(rng, mi_examples)["inputs"]["item"]
    return {"mi": feature_mi_matrix(feats, ctx.model.item_vocab)}

  def apply(hp, ctx, params, method_state, batch, rng):
    out, model_state = ctx.forward(params)
    main = in_batch_softmax_loss(out["query"], out["item"],
                                 batch["item_log_q"], hp["tau"],
                                 hp["logq_weight"])
    metrics = {"main_loss": main}
    loss = main
    if masking != "none":
      feats = batch["ssl_item" if ssl_items == "uniform"
                    else "ssl_item_batch"]
      b, num = feats.shape
      mask = feature_masks(rng, masking, method_state.get("mi"), b, num)
      z1 = ctx.forward(params, {"item": feats, "item_mask": mask})[0]["item"]
      z2 = ctx.forward(params, {"item": feats,
                                "item_mask": ~mask})[0]["item"]
      ssl = ssl_contrastive_loss(z1, z2, hp["ssl_tau"])
      metrics["ssl_loss"] = ssl
      loss = main + hp["alpha"] * ssl
    return loss, method_lib.StepAux(metrics, model_state, method_state)

  return method_lib.Method(
      name="ssl_recsys", hparams=hparams, init=init, apply=apply,
      rules={"alpha": config_lib.at_least(0.0),
             "tau": config_lib.greater_than(0.0),
             "ssl_tau": config_lib.greater_than(0.0),
             "logq_weight": config_lib.at_least(0.0),
             "masking": config_lib.one_of(*MASKINGS),
             "ssl_items": config_lib.one_of(*SSL_ITEMS),
             "mi_examples": config_lib.at_least(2, integer=True)})

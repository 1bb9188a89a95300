"""ECAML: energy-confused adversarial metric learning.

Paper: Binghui Chen, Weihong Deng, "Energy Confused Adversarial Metric
Learning for Zero-Shot Image Retrieval and Clustering", AAAI 2019,
arXiv 1901.07169. Official code (Caffe): https://github.com/chenbinghui1/ECAML
(`src/energy_confusion.cpp`, `src/npair.cpp`,
`examples/car/train_confusion.prototxt`, `examples/car/solver.prototxt`).

The metric loss learns the embedding `e = W f + b` of the backbone feature
`f`. The energy-confusion term is computed on the same head applied to the
feature with its gradient stopped (the prototxt's `fc_embedding_a` shares
the weights `w`, `b` of `fc_embedding` and has `propagate_down: 0`), so it
moves only the embedding layer, against the metric loss (the adversarial
part): the backbone learns from the metric loss alone, the embedding layer
from both. For a batch of `n` rows with `r = random_num`:

    for every row i < n - 2r, r partners j drawn without replacement from
    {i + 2, ..., n - 1} (rows come in same-class pairs (i, i + 1), which
    are never drawn);
    E = sum over drawn (i, j) of 0.5 ||e_i - e_j||^2 / w_ij,
        w_ij = number of same-class (different-class) pairs i < j in the
        batch when y_i = y_j (y_i != y_j);
    confusion = log E,   loss = metric + lambda * confusion

(`Backward_cpu` scales the gradient by 1/E: the layer's value is E, its
gradient that of log E). The official weight is 0.13, r = 10.

The metric loss is the official N-pair layer (`NpairLoss`) on the
L2-normalised embedding scaled by 10 (`Normalization` + `Scale` layers):
for anchor i with c the mean of its `kcenter` nearest same-class rows and
N the `kcenter_n` different-class rows nearest to c,

    s_+ = (2 - k) x_i.c + (1 - k) |x_i| |c|,   s_j = x_j.c (j in N)
    l_i = -log max(e^{s_+} / (e^{s_+} + sum_j e^{s_j}), 1e-20)
          + coeff / 2 |x_i|^2

(0 for anchors with fewer than `kcenter` positives or `kcenter_n`
negatives), averaged over the batch; `kcenter_n = 0` takes every negative.
Official values: kcenter 1, k 1, kcenter_n 128 (every negative of a
65 x 2 batch), coeff 5e-4.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from common import config as config_lib
from common.core import method as method_lib


def confusion_pairs(key: jax.Array, n: int, random_num: int) -> jax.Array:
  """`[n, n]` bool: the official draw of partners (i < j only)."""
  i = jnp.arange(n)[:, None]
  j = jnp.arange(n)[None]
  allowed = (j >= i + 2) & (i < n - 2 * random_num)
  scores = jnp.where(allowed, jax.random.uniform(key, (n, n)), 2.0)
  ranks = jnp.argsort(jnp.argsort(scores, axis=1), axis=1)
  return allowed & (ranks < random_num)


def energy_confusion(emb: jax.Array, labels: jax.Array, pairs: jax.Array,
                     valid: jax.Array | None = None) -> jax.Array:
  """log E of `emb [n, d]` over the drawn `pairs [n, n]` (see above).

  `valid [n]` drops padded rows from the pairs and the pair counts.
  """
  n = emb.shape[0]
  valid = jnp.ones((n,), bool) if valid is None else valid
  upper = jnp.triu(jnp.ones((n, n), bool), 1) & valid[:, None] & valid[None]
  same = labels[:, None] == labels[None]
  w_pos = jnp.sum(upper & same)
  w_neg = jnp.sum(upper & ~same)
  w = jnp.maximum(jnp.where(same, w_pos, w_neg), 1).astype(jnp.float32)
  emb = emb.astype(jnp.float32)
  sq = jnp.sum(emb * emb, axis=1)
  d2 = jnp.maximum(sq[:, None] + sq[None] - 2.0 * emb @ emb.T, 0.0)
  energy = jnp.sum(jnp.where(pairs & upper, 0.5 * d2 / w, 0.0))
  return jnp.log(jnp.maximum(energy, 1e-30))


def npair_loss(x: jax.Array, labels: jax.Array, kcenter: int = 1,
               kcenter_n: int = 0, k: float = 1.0, coeff: float = 5e-4,
               valid: jax.Array | None = None) -> jax.Array:
  """The official `NpairLoss` of `x [n, d]` (see above), a scalar."""
  n = x.shape[0]
  valid = jnp.ones((n,), bool) if valid is None else valid
  x = x.astype(jnp.float32)
  eye = jnp.eye(n, dtype=bool)
  same = (labels[:, None] == labels[None]) & valid[None] & valid[:, None]
  pos = same & ~eye
  neg = ~same & valid[None] & valid[:, None]
  sq = jnp.sum(x * x, axis=1)
  dist = jnp.sqrt(jnp.maximum(sq[:, None] + sq[None] - 2.0 * x @ x.T, 0.0))
  # c_i: mean of the kcenter nearest positives.
  _, near_pos = jax.lax.top_k(jnp.where(pos, -dist, -jnp.inf), kcenter)
  center = jnp.mean(x[near_pos], axis=1)                        # [n, d]
  # The kcenter_n negatives nearest to c_i (0: all of them).
  d_neg = jnp.sqrt(jnp.maximum(
      jnp.sum(center**2, 1)[:, None] + sq[None] - 2.0 * center @ x.T, 0.0))
  kn = n if kcenter_n <= 0 else min(kcenter_n, n)
  neg_score, near_neg = jax.lax.top_k(jnp.where(neg, -d_neg, -jnp.inf), kn)
  chosen = jnp.isfinite(neg_score)
  s_pos = ((2.0 - k) * jnp.sum(x * center, 1) + (1.0 - k)
           * jnp.sqrt(sq) * jnp.linalg.norm(center, axis=1))
  s_neg = jnp.einsum("nkd,nd->nk", x[near_neg], center)
  logits = jnp.concatenate([s_pos[:, None],
                            jnp.where(chosen, s_neg, -jnp.inf)], axis=1)
  p_pos = jnp.exp(s_pos - jax.nn.logsumexp(logits, axis=1))
  per = -jnp.log(jnp.maximum(p_pos, 1e-20)) + 0.5 * coeff * sq
  enough = (jnp.sum(pos, 1) >= kcenter) & (
      jnp.sum(neg, 1) >= (1 if kcenter_n <= 0 else kcenter_n)) & valid
  return jnp.sum(jnp.where(enough, per, 0.0)) / n


def _normalised(e: jax.Array, scale: jax.Array) -> jax.Array:
  return scale * e / jnp.maximum(jnp.linalg.norm(e, axis=1, keepdims=True),
                                 1e-12)


def apply(method_config, hp, ctx, params, method_state, batch, rng):
  """N-pair on the scaled unit embedding + lambda * energy confusion on the
  embedding head over stop-gradient features."""
  out, model_state = ctx.forward(params)
  labels, valid = batch["label"], batch["mask"]
  x = _normalised(out["embedding"], hp["scale"])
  metric = npair_loss(x, labels, int(method_config["kcenter"]),
                      int(method_config["kcenter_n"]), hp["k"], hp["coeff"],
                      valid)
  head = params[ctx.model.HEAD_NAME]
  f = jax.lax.stop_gradient(out["features"]).astype(jnp.float32)
  e_conf = f @ head["kernel"].astype(jnp.float32) + head["bias"]
  pairs = confusion_pairs(rng, labels.shape[0],
                          int(method_config["random_num"]))
  confusion = energy_confusion(e_conf, labels, pairs, valid)
  loss = metric + hp["lam"] * confusion
  return loss, method_lib.StepAux(
      {"npair": metric, "energy_confusion": confusion}, model_state,
      method_state)


STATIC = ("kcenter", "kcenter_n", "random_num")
RULES = {"lam": config_lib.at_least(0.0), "coeff": config_lib.at_least(0.0),
         "scale": config_lib.greater_than(0.0),
         "kcenter": config_lib.at_least(1, integer=True),
         "kcenter_n": config_lib.at_least(0, integer=True),
         "random_num": config_lib.at_least(1, integer=True)}


def hparams(method_config, run):
  return {k: float(v) for k, v in method_config.items() if k not in STATIC}


@method_lib.register_method("ecaml")
def make(config: dict) -> method_lib.Method:
  static = {k: config[k] for k in STATIC}
  return method_lib.Method(
      name="ecaml", hparams=hparams, rules=RULES,
      apply=lambda hp, ctx, p, s, b, r: apply(static, hp, ctx, p, s, b, r))

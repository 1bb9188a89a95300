"""Happy: A Debiased Learning Framework for Continual Generalized Category
Discovery.

Ma, Zhu, Zhong, Liu, Zhang, Liu. NeurIPS 2024. arXiv:2410.06535.
Official code (PyTorch): https://github.com/mashijie1028/Happy-CGCD
(`train_happy.py`, `models/utils_proto_aug.py`, `models/utils_simgcd_pro.py`).

The pure functions of Happy's continual stages, on top of a SimGCD base:

* soft entropy regularisation (`soft_entropy_terms`): the batch-mean
  prediction `p = mean_i softmax(z_i / 0.1)` is split into the group of
  classes seen before this stage ("old") and the classes introduced in it
  ("new"); three terms `log K - H(.)` push up the entropy of the 2-way
  marginal `(sum_old p, sum_new p)` and of `p` renormalised within each
  group (official flags `memax_old_new/old_in/new_in_weight`);
* hardness-aware prototype sampling (`prototype_hardness`,
  `sample_prototype_features`): a class's hardness is the mean cosine
  similarity of its prototype to the other seen prototypes; classes are
  drawn from `softmax(hardness / hardness_temp)` and features
  `normalize(mu_c) + radius * eps`, `eps ~ N(0, I)`;
* prototype-augmentation CE (`proto_aug_ce`): cross-entropy of the head's
  logits on those features (temperature 0.1) against the drawn classes;
* feature distillation (`feature_distill`): squared distance between the
  L2-normalised backbone features of the current and the previous stage's
  model, summed over features, averaged over the batch;
* class prototypes and the shared radius (`class_prototypes`,
  `shared_radius`) computed after a stage;
* clustering-guided initialisation of the new heads (`kmeans`,
  `kmeans_new_heads`): k-means on normalised features with one centroid per
  active class; the centroids the old head is least confident about become
  the new rows, scaled to the mean norm of the rows they replace.

Classes are handled with masks over a fixed head of `C` rows
(`seen_mask`, `active_mask` `[C]` bool) instead of the official code's
growing head, so every stage has the same shapes, one compilation serves
all stages, and the masks are traced data.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

_NEG = -1e9   # logit of an inactive class


def normalize(x: jax.Array, axis: int = -1) -> jax.Array:
  """L2 normalisation with torch's `F.normalize` eps (1e-12)."""
  norm = jnp.linalg.norm(x, axis=axis, keepdims=True)
  return x / jnp.maximum(norm, 1e-12)


def mask_logits(logits: jax.Array, active_mask: jax.Array) -> jax.Array:
  """`logits` [..., C] with inactive classes set to -1e9."""
  return jnp.where(active_mask, logits, _NEG)


def xlogx(x: jax.Array) -> jax.Array:
  return jnp.where(x > 0, x * jnp.log(jnp.where(x > 0, x, 1.0)), 0.0)


def soft_entropy_terms(avg_probs: jax.Array, seen_mask: jax.Array,
                       active_mask: jax.Array) -> dict[str, jax.Array]:
  """The three group-wise entropy-maximisation terms (each `log K - H`).

  Args:
    avg_probs: `[C]` batch-mean prediction, zero on inactive classes.
    seen_mask: `[C]` bool, classes seen before this stage ("old").
    active_mask: `[C]` bool, classes of the head this stage (old + new).

  Returns:
    `{"old_new", "old_in", "new_in"}` scalars, each >= 0, zero when the
    distribution it measures is uniform. `new_in` is 0 with one new class
    (the official code skips it then), `old_in` with one old class.
  """
  seen = seen_mask & active_mask
  new = active_mask & ~seen_mask
  p_old = jnp.sum(jnp.where(seen, avg_probs, 0.0))
  p_new = jnp.sum(jnp.where(new, avg_probs, 0.0))
  old_new = xlogx(p_old) + xlogx(p_new) + jnp.log(2.0)

  def within(group):
    total = jnp.sum(jnp.where(group, avg_probs, 0.0))
    q = jnp.where(group, avg_probs, 0.0) / jnp.maximum(total, 1e-12)
    count = jnp.maximum(jnp.sum(group), 1).astype(avg_probs.dtype)
    return jnp.sum(xlogx(q)) + jnp.log(count)

  return {"old_new": old_new, "old_in": within(seen), "new_in": within(new)}


def soft_entropy_reg(logits: jax.Array, seen_mask: jax.Array,
                     active_mask: jax.Array, w_old_new: jax.Array,
                     w_old_in: jax.Array, w_new_in: jax.Array,
                     temperature: float = 0.1
                     ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Weighted soft entropy regulariser of a batch of logits.

  Args:
    logits: `[b, C]` head outputs (cosine logits before the temperature).
    seen_mask, active_mask: `[C]` bool (see `soft_entropy_terms`).
    w_old_new, w_old_in, w_new_in: the weights of the three terms.
    temperature: the official code's fixed 0.1.

  Returns:
    `(loss, terms)`.
  """
  probs = jax.nn.softmax(mask_logits(logits / temperature, active_mask), -1)
  terms = soft_entropy_terms(jnp.mean(probs, axis=0), seen_mask, active_mask)
  loss = (w_old_new * terms["old_new"] + w_old_in * terms["old_in"]
          + w_new_in * terms["new_in"])
  return loss, terms


def prototype_hardness(prototypes: jax.Array,
                       valid_mask: jax.Array) -> jax.Array:
  """Mean cosine similarity of each prototype to the other valid ones.

  Args:
    prototypes: `[C, d]` class prototypes (normalised here).
    valid_mask: `[C]` bool, which rows are prototypes of seen classes.

  Returns:
    `[C]` hardness (higher = closer to other classes = harder); 0 on
    invalid rows.
  """
  p = normalize(prototypes)
  sim = p @ p.T
  pair = valid_mask[:, None] & valid_mask[None, :]
  pair = pair & ~jnp.eye(p.shape[0], dtype=bool)
  total = jnp.sum(jnp.where(pair, sim, 0.0), axis=-1)
  count = jnp.maximum(jnp.sum(valid_mask) - 1, 1).astype(p.dtype)
  return jnp.where(valid_mask, total / count, 0.0)


def sampling_probs(hardness: jax.Array, valid_mask: jax.Array,
                   hardness_temp: jax.Array) -> jax.Array:
  """`[C]` class-sampling distribution softmax(hardness / temp) over valid
  classes (an infinite temperature is uniform sampling)."""
  return jax.nn.softmax(jnp.where(valid_mask, hardness / hardness_temp,
                                  -jnp.inf))


def sample_prototype_features(rng: jax.Array, prototypes: jax.Array,
                              hardness: jax.Array, valid_mask: jax.Array,
                              radius: jax.Array, hardness_temp: jax.Array,
                              n: int) -> tuple[jax.Array, jax.Array]:
  """Hardness-aware prototype sampling.

  Args:
    rng: key.
    prototypes: `[C, d]` (normalised here).
    hardness: `[C]` from `prototype_hardness`.
    valid_mask: `[C]` bool, classes that have a prototype.
    radius: scalar std of the Gaussian around each prototype (already
      times the official `radius_scale`).
    hardness_temp: sampling temperature (official 0.1).
    n: number of features (official: the two-view batch size).

  Returns:
    `(features [n, d], labels [n] int32)`; features are not renormalised
    (as in the official code).
  """
  k_cls, k_eps = jax.random.split(rng)
  logits = jnp.log(sampling_probs(hardness, valid_mask, hardness_temp))
  labels = jax.random.categorical(k_cls, logits, shape=(n,)).astype(jnp.int32)
  eps = jax.random.normal(k_eps, (n, prototypes.shape[-1]), prototypes.dtype)
  return normalize(prototypes)[labels] + radius * eps, labels


def cosine_logits(features: jax.Array, kernel: jax.Array) -> jax.Array:
  """`[n, C]` cosine logits of features `[n, d]` under head rows `[C, d]`
  (SimGCD's weight-normalised last layer with unit norm)."""
  return normalize(features) @ normalize(kernel).T


def proto_aug_ce(logits: jax.Array, labels: jax.Array,
                 active_mask: jax.Array,
                 temperature: float = 0.1) -> jax.Array:
  """Mean CE of the head's logits `[n, C]` on sampled prototype features
  against their classes `[n]`, over the active classes."""
  logp = jax.nn.log_softmax(mask_logits(logits / temperature, active_mask))
  return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], -1))


def feature_distill(features: jax.Array,
                    features_prev: jax.Array) -> jax.Array:
  """`sum ||n(f) - n(f_prev)||^2 / b` over `[b, d]` backbone features, the
  previous stage's model frozen (its gradient stopped)."""
  diff = normalize(features) - jax.lax.stop_gradient(normalize(
      features_prev))
  return jnp.sum(diff ** 2) / features.shape[0]


def class_prototypes(features: jax.Array, labels: jax.Array,
                     valid: jax.Array, num_classes: int
                     ) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Per-class means of normalised features, and per-class variances.

  Args:
    features: `[N, d]` backbone features (normalised here, as officially).
    labels: `[N]` int class (true labels after stage 0, predictions after
      a continual stage).
    valid: `[N]` bool, rows that count (padding false).
    num_classes: C.

  Returns:
    `(prototypes [C, d]` normalised means (0 for empty classes),
    `variance [C]` trace of the class covariance / d,
    `counts [C])`.
  """
  f = normalize(features)
  w = valid.astype(f.dtype)
  onehot = jax.nn.one_hot(labels, num_classes, dtype=f.dtype) * w[:, None]
  counts = jnp.sum(onehot, axis=0)
  means = (onehot.T @ f) / jnp.maximum(counts, 1.0)[:, None]
  centred = f - means[labels]
  variance = (onehot.T @ jnp.sum(centred ** 2, -1)) / jnp.maximum(
      counts, 1.0) / f.shape[-1]
  return normalize(means), variance, counts


def shared_radius(variance: jax.Array, class_mask: jax.Array) -> jax.Array:
  """`sqrt(mean_c variance_c)` over the classes of `class_mask` (the
  official radius, computed once from the labelled stage)."""
  m = class_mask.astype(variance.dtype)
  return jnp.sqrt(jnp.sum(variance * m) / jnp.maximum(jnp.sum(m), 1.0))


def kmeans(rng: jax.Array, x: jax.Array, valid: jax.Array, k: int,
           iters: int = 50, k_active: jax.Array | None = None) -> jax.Array:
  """Lloyd's k-means with k-means++ seeding on rows `x [N, d]` where
  `valid`; returns `[k, d]` centroids (jittable, fixed iteration count).

  `k_active` (traced, <= k) uses only the first `k_active` centroids (the
  rest are returned as seeded zeros), so one compilation serves every
  stage's number of classes.
  """
  n = x.shape[0]
  k_active = k if k_active is None else k_active
  live = jnp.arange(k) < k_active
  w = valid.astype(x.dtype)
  keys = jax.random.split(rng, k)
  first = jax.random.choice(keys[0], n, p=w / jnp.sum(w))
  centres = jnp.zeros((k, x.shape[1]), x.dtype).at[0].set(x[first])

  def seed(i, c):
    d2 = jnp.sum((x[:, None] - c[None]) ** 2, -1)
    d2 = jnp.where(jnp.arange(k)[None] < i, d2, jnp.inf).min(-1) * w
    pick = jax.random.choice(keys[i], n, p=d2 / jnp.maximum(jnp.sum(d2),
                                                            1e-12))
    return jnp.where(i < k_active, c.at[i].set(x[pick]), c)

  centres = jax.lax.fori_loop(1, k, seed, centres)

  def lloyd(_, c):
    d2 = jnp.sum((x[:, None] - c[None]) ** 2, -1)
    assign = jnp.argmin(jnp.where(live[None], d2, jnp.inf), -1)
    onehot = jax.nn.one_hot(assign, k, dtype=x.dtype) * w[:, None]
    counts = jnp.sum(onehot, 0)
    new = (onehot.T @ x) / jnp.maximum(counts, 1.0)[:, None]
    return jnp.where(counts[:, None] > 0, new, c)

  return jax.lax.fori_loop(0, iters, lloyd, centres)


def kmeans_new_heads(rng: jax.Array, features: jax.Array, valid: jax.Array,
                     head: jax.Array, seen_mask: jax.Array,
                     active_mask: jax.Array, iters: int = 50) -> jax.Array:
  """Clustering-guided initialisation of the heads of the new classes.

  k-means (k = number of active classes) on the normalised features of
  this stage's data under the previous model; the centroids with the
  lowest maximum cosine logit against the seen heads become the new
  classes' rows, scaled to the mean norm of the rows they replace
  (official `get_kmeans_centroid_for_new_head`).

  Args:
    rng: key of the k-means seeding.
    features: `[N, d]` backbone features of this stage's training data.
    valid: `[N]` bool.
    head: `[C, d]` the classifier's prototype rows.
    seen_mask, active_mask: `[C]` bool.
    iters: Lloyd iterations.

  Returns:
    `[C, d]` head with the new active rows replaced.
  """
  k = head.shape[0]
  n_active = jnp.sum(active_mask)
  f = normalize(features)
  cents = normalize(kmeans(rng, f, valid, k, iters, k_active=n_active))
  cents_valid = jnp.arange(k) < n_active
  logits = cents @ normalize(head).T                    # [k, C]
  max_seen = jnp.max(jnp.where(seen_mask[None], logits, -jnp.inf), -1)
  # least confident first; invalid centroids last
  order = jnp.argsort(jnp.where(cents_valid, max_seen, jnp.inf))
  new = active_mask & ~seen_mask
  slot = jnp.cumsum(new) - 1                             # [C] rank of a row
  picked = cents[order[jnp.clip(slot, 0, k - 1)]]        # [C, d]
  norms = jnp.linalg.norm(head, axis=-1)
  scale = jnp.sum(jnp.where(new, norms, 0.0)) / jnp.maximum(jnp.sum(new), 1)
  return jnp.where(new[:, None], picked * scale, head)

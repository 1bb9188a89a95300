"""GIFD: l1 projection vs brute force, iDLG labels, matching loss, attacks."""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np

from algos.privacy import gifd


def _brute_force_l1_projection(v: np.ndarray, radius: float) -> np.ndarray:
  """The nearest point of the l1 ball by enumerating its faces: for every
  sign pattern s in {-1, 0, 1}^d (not all 0), project onto the affine set
  {w : s.w = radius, w_i = 0 where s_i = 0} and keep the candidates whose
  signs agree with s; the point itself if inside."""
  if np.abs(v).sum() <= radius:
    return v
  best, best_d = None, np.inf
  for s in itertools.product((-1, 0, 1), repeat=v.size):
    s = np.array(s, float)
    on = s != 0
    if not on.any():
      continue
    w = np.zeros_like(v)
    w[on] = v[on] - (s[on] @ v[on] - radius) / on.sum() * s[on]
    if np.all(w[on] * s[on] >= -1e-12):
      d = np.sum((w - v) ** 2)
      if d < best_d:
        best, best_d = w, d
  return best


def test_l1_projection_matches_brute_force():
  rng = np.random.default_rng(0)
  v = rng.normal(size=(40, 4)) * rng.uniform(0.1, 3.0, size=(40, 1))
  radii = rng.uniform(0.05, 4.0, size=40)
  per_row = jax.jit(jax.vmap(lambda row, r: gifd.l1_ball_project(
      row[None], r)[0]))
  got = np.asarray(per_row(jnp.array(v), jnp.array(radii)))
  want = np.stack([_brute_force_l1_projection(v[i], radii[i])
                   for i in range(40)])
  np.testing.assert_allclose(got, want, atol=1e-5)
  # Rows of a batch are projected independently, any trailing shape.
  batch = gifd.l1_ball_project(jnp.array(v[:6]).reshape(6, 2, 2), 1.0)
  np.testing.assert_allclose(
      np.asarray(batch).reshape(6, 4),
      np.stack([_brute_force_l1_projection(v[i], 1.0) for i in range(6)]),
      atol=1e-5)


# A tiny victim (ReLU MLP on 6x6x1 images) and generator (z 4 -> 16 -> 36).
def _victim_params(key):
  k1, k2 = jax.random.split(key)
  return {"dense0": {"kernel": jax.random.normal(k1, (36, 24)) / 6.0,
                     "bias": jnp.zeros(24)},
          "head": {"kernel": jax.random.normal(k2, (24, 5)) / 5.0,
                   "bias": jnp.zeros(5)}}


def _victim_apply(params, x):
  h = jax.nn.relu(x.reshape(x.shape[0], -1) @ params["dense0"]["kernel"]
                  + params["dense0"]["bias"])
  return h @ params["head"]["kernel"] + params["head"]["bias"]


_GEN = [jax.random.normal(jax.random.key(7), (4, 16)) / 2.0,
        jax.random.normal(jax.random.key(8), (16, 36)) / 4.0]


def _forward(f, start, end):
  for layer in range(start, end):
    f = f @ _GEN[layer]
    f = jnp.tanh(f) if layer == 1 else jax.nn.leaky_relu(f, 0.2)
  return f.reshape(f.shape[0], 6, 6, 1) if end == 2 else f


@functools.lru_cache(maxsize=None)
def _setup(n=2):
  """(victim gradient fn, observed gradient, images, labels) of n images."""
  params = _victim_params(jax.random.key(0))
  z_true = jax.random.normal(jax.random.key(1), (n, 4))
  images = (_forward(z_true, 0, 2) + 1.0) / 2.0
  labels = jnp.arange(n) * 2
  grads_fn = jax.jit(functools.partial(gifd.victim_gradients, _victim_apply,
                                       params))
  return grads_fn, grads_fn(images, labels), images, labels


def test_idlg_recovers_the_labels_of_a_batch():
  grads_fn, target, _, labels = _setup(n=3)
  got = gifd.infer_labels(target["head"]["kernel"], 3)
  np.testing.assert_array_equal(np.asarray(got), np.asarray(labels))


def test_matching_loss_is_zero_at_the_true_input_only():
  grads_fn, target, images, labels = _setup()
  assert abs(float(gifd.grad_match_loss(target, target))) < 1e-6
  obj = gifd.Objective(grads_fn, target, labels, jnp.float32(0.0))
  score = jax.jit(obj.score)
  assert abs(float(score(images))) < 1e-6
  assert float(score(jnp.clip(images + 0.2, 0, 1))) > 1e-3
  # Scale-invariant (cosine), and TV adds its weight times TV.
  halved = jax.tree.map(lambda g: 0.5 * g, target)
  assert abs(float(gifd.grad_match_loss(halved, target))) < 1e-6
  tv = gifd.Objective(grads_fn, target, labels, jnp.float32(0.5))
  np.testing.assert_allclose(float(jax.jit(tv.__call__)(images)),
                             0.5 * float(gifd.total_variation(images)),
                             atol=1e-6)


def test_tiny_attacks_lower_the_matching_loss():
  grads_fn, target, images, labels = _setup()
  obj = gifd.Objective(grads_fn, target, labels, jnp.float32(1e-4))
  z0 = jax.random.normal(jax.random.key(3), (2, 4))
  start = float(obj.score(jnp.clip((_forward(z0, 0, 2) + 1) / 2, 0, 1)))

  @jax.jit
  def run(radii):   # traced radii: one compilation for both calls
    stages, scores = gifd.invert_gifd(
        obj, _forward, 2, z0, (30, 30), jnp.array([0.1, 0.1]), radii)
    pixels = gifd.invert_pixels(obj, jax.random.key(4), images.shape, 30,
                                jnp.float32(0.1))
    return stages, scores, obj.score(pixels)

  stages, scores, pixel_score = run(jnp.array([0.0, 2.0]))
  assert stages.shape == (2,) + images.shape
  assert float(scores[0]) < start and float(scores[1]) < float(scores[0])
  assert float(pixel_score) < 1.0   # below the loss of orthogonal gradients
  # The feature stage never leaves its l1 ball: radius 0 keeps the latent
  # stage's image.
  frozen, _, _ = run(jnp.array([0.0, 0.0]))
  np.testing.assert_allclose(frozen[1], frozen[0], atol=1e-5)

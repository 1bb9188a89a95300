"""FGSM / PGD (common.eval.attacks) against hand-written references."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from common.eval import attacks


def _problem():
  kx, kw = jax.random.split(jax.random.PRNGKey(0))
  x = jax.random.uniform(kx, (6, 5))
  w = jax.random.normal(kw, (5, 3))
  labels = jnp.array([0, 1, 2, 0, 1, 2])
  return x, labels, (lambda z: jnp.tanh(z) @ w)


def _hand_pgd(loss_fn, x, x0, eps, alpha, steps):
  """The textbook loop: sign step, clip to the ball, clip to [0, 1]."""
  xa = x0
  for _ in range(steps):
    g = jax.grad(loss_fn)(xa)
    xa = xa + alpha * jnp.sign(g)
    xa = jnp.minimum(jnp.maximum(xa, x - eps), x + eps)
    xa = jnp.clip(xa, 0.0, 1.0)
  return xa


def test_pgd_matches_a_hand_written_loop_with_the_same_random_start():
  x, labels, logits = _problem()
  loss = attacks.cross_entropy_loss(logits, labels)
  key = jax.random.PRNGKey(3)
  got = jax.jit(lambda x, e, a: attacks.pgd(
      loss, x, eps=e, step_size=a, steps=7, rng=key))(x, 0.1, 0.03)
  x0 = jnp.clip(x + jax.random.uniform(key, x.shape, minval=-1.0,
                                       maxval=1.0) * 0.1, 0.0, 1.0)
  want = jax.jit(lambda x, x0: _hand_pgd(loss, x, x0, 0.1, 0.03, 7))(x, x0)
  np.testing.assert_allclose(got, want, atol=1e-6)
  assert float(loss(got)) > float(loss(x))
  # Unrolled and traced step counts give the same point.
  unrolled = jax.jit(lambda x: attacks.pgd(
      loss, x, eps=0.1, step_size=0.03, steps=7, rng=key, unroll=True))(x)
  np.testing.assert_allclose(unrolled, got, atol=1e-6)


def test_fgsm_is_one_step_pgd_without_random_start():
  x, labels, logits = _problem()
  loss = attacks.cross_entropy_loss(logits, labels)
  got = attacks.fgsm(loss, x, eps=0.05)
  want = attacks.pgd(loss, x, eps=0.05, step_size=0.05, steps=1,
                     start="none")
  np.testing.assert_array_equal(got, want)
  ref = jnp.clip(x + 0.05 * jnp.sign(jax.grad(loss)(x)), 0.0, 1.0)
  np.testing.assert_allclose(got, ref, atol=1e-7)


def test_every_iterate_stays_in_the_eps_ball_and_the_box():
  x, labels, logits = _problem()
  loss = attacks.cross_entropy_loss(logits, labels)
  run = jax.jit(lambda x, start: attacks.pgd(
      loss, x, eps=0.2, step_size=0.5, steps=3, rng=jax.random.PRNGKey(1),
      start=start), static_argnums=1)
  for start in attacks.START_KINDS:
    xa = run(x, start)
    assert float(jnp.max(jnp.abs(xa - x))) <= 0.2 + 1e-6
    assert float(xa.min()) >= 0.0 and float(xa.max()) <= 1.0
  far = jnp.array([[2.0, -2.0, 0.55]])
  got = attacks.project_linf(far, jnp.array([[0.95, 0.05, 0.5]]), 0.1)
  np.testing.assert_allclose(got, [[1.0, 0.0, 0.55]], atol=1e-7)
  unbounded = attacks.project_linf(far, jnp.zeros((1, 3)), 0.1, bounds=None)
  np.testing.assert_allclose(unbounded, [[0.1, -0.1, 0.1]], atol=1e-7)


def test_pixel_view_inverts_the_normalisation():
  mean, std = jnp.array([0.4, 0.5]), jnp.array([0.2, 0.3])
  normalize = lambda u: (u - mean) / std
  pixels = jax.random.uniform(jax.random.PRNGKey(2), (3, 4, 4, 2))
  def roundtrip(pixels):
    back, to_input = attacks.pixel_view(normalize, normalize(pixels))
    return back, to_input(back)
  back, again = jax.jit(roundtrip)(pixels)
  np.testing.assert_allclose(back, pixels, atol=1e-6)
  np.testing.assert_allclose(again, normalize(pixels), atol=1e-5)

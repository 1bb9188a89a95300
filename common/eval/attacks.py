"""L-inf adversarial attacks (FGSM, PGD) as pure, jittable functions.

* FGSM: Goodfellow, Shlens, Szegedy, "Explaining and Harnessing Adversarial
  Examples", ICLR 2015, arXiv:1412.6572.
* PGD: Madry, Makelov, Schmidt, Tsipras, Vladu, "Towards Deep Learning
  Models Resistant to Adversarial Attacks", ICLR 2018, arXiv:1706.06083.

An attack maximises a scalar `loss_fn(x) -> []` (targeted to any loss: the
student's cross-entropy, a KL to a teacher...) over the L-inf ball of
radius `eps` around `x`, intersected with the data box `bounds` (pixel
space [0, 1] for images; None for unbounded inputs). Each step is a sign
step of size `step_size` followed by the projection. The loop is a
`lax.fori_loop`, so an attack runs inside the jitted train step (PGD
adversarial training) and in evaluation alike; `eps` and `step_size` may be
traced, and so may `steps` unless `unroll=True` (a Python-level unroll,
which XLA:CPU runs much faster for convolutions, WORKSPACE invariant 10).

Random starts (`start`):
* `"uniform"`: `x + U(-eps, eps)`, clipped to the box (Madry et al.; the
  MTARD code's evaluation attack `attack_pgd`);
* `"normal"`: `x + start_scale * N(0, 1)`, not clipped (the MTARD / TRADES
  training attack: `x + 0.001 * randn`);
* `"none"`: start at `x` (FGSM).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

START_KINDS = ("uniform", "normal", "none")
Bounds = tuple[float, float] | None


def project_linf(x_adv: jax.Array, x: jax.Array, eps: jax.Array,
                 bounds: Bounds = (0.0, 1.0)) -> jax.Array:
  """`x_adv` clipped to the L-inf ball `|x_adv - x| <= eps` and the box.

  Clipping to the ball, then to the box, lands in their intersection
  because `x` lies in the box. Shapes: `x_adv`, `x` `[b, ...]`.
  """
  x_adv = x + jnp.clip(x_adv - x, -eps, eps)
  if bounds is not None:
    x_adv = jnp.clip(x_adv, bounds[0], bounds[1])
  return x_adv


def random_start(rng: jax.Array | None, x: jax.Array, eps: jax.Array,
                 start: str = "uniform", start_scale: float = 1e-3,
                 bounds: Bounds = (0.0, 1.0)) -> jax.Array:
  """The attack's starting point `[b, ...]` (see the module docstring)."""
  if start not in START_KINDS:
    raise ValueError(f"attack start={start!r}; allowed {START_KINDS}")
  if start == "none":
    return x
  if rng is None:
    raise ValueError(f"a random start ({start!r}) needs an rng key")
  if start == "normal":
    return x + start_scale * jax.random.normal(rng, x.shape, x.dtype)
  x0 = x + jax.random.uniform(rng, x.shape, x.dtype, -1.0, 1.0) * eps
  return x0 if bounds is None else jnp.clip(x0, bounds[0], bounds[1])


def pgd(loss_fn: Callable[[jax.Array], jax.Array], x: jax.Array, *,
        eps: jax.Array, step_size: jax.Array, steps: int | jax.Array,
        rng: jax.Array | None = None, start: str = "uniform",
        start_scale: float = 1e-3, bounds: Bounds = (0.0, 1.0),
        unroll: bool = False) -> jax.Array:
  """Projected gradient ascent on `loss_fn` in the L-inf ball.

  Args:
    loss_fn: `loss_fn(x_adv [b, ...]) -> []` to maximise. A mean over the
      batch is fine: examples do not interact when the model runs in eval
      mode, and sign steps ignore the 1/b scale.
    x: `[b, ...]` clean inputs (inside `bounds`).
    eps: radius of the L-inf ball.
    step_size: size of each sign step.
    steps: number of steps (static when `unroll`).
    rng: key of the random start.
    start: `"uniform"`, `"normal"` or `"none"`.
    start_scale: standard deviation of the `"normal"` start.
    bounds: the data box, or None.
    unroll: unroll the loop in Python (needs an int `steps`).

  Returns:
    `[b, ...]` adversarial inputs, gradient-stopped.
  """
  x = jax.lax.stop_gradient(x)
  x_adv = random_start(rng, x, eps, start, start_scale, bounds)

  def body(_, xa):
    grad = jax.grad(loss_fn)(xa)
    return project_linf(xa + step_size * jnp.sign(grad), x, eps, bounds)

  if unroll:
    if not isinstance(steps, int):
      raise ValueError("pgd(unroll=True) needs an int number of steps, "
                       f"got {type(steps).__name__}")
    for i in range(steps):
      x_adv = body(i, x_adv)
  else:
    x_adv = jax.lax.fori_loop(0, steps, body, x_adv)
  return jax.lax.stop_gradient(x_adv)


def fgsm(loss_fn: Callable[[jax.Array], jax.Array], x: jax.Array, *,
         eps: jax.Array, bounds: Bounds = (0.0, 1.0)) -> jax.Array:
  """One sign step of size `eps` from `x`: PGD with one step, no random
  start (`[b, ...]` -> `[b, ...]`)."""
  return pgd(loss_fn, x, eps=eps, step_size=eps, steps=1, start="none",
             bounds=bounds, unroll=True)


def cross_entropy_loss(logits_fn: Callable[[jax.Array], jax.Array],
                       labels: jax.Array) -> Callable[[jax.Array], jax.Array]:
  """`x -> mean CE(logits_fn(x), labels)`: the untargeted attack's loss
  (`labels` `[b]` int; `logits_fn(x)` `[b, C]`)."""
  def loss(x):
    logits = logits_fn(x).astype(jnp.float32)
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], -1))
  return loss


def pixel_view(normalize: Callable[[jax.Array], jax.Array],
               inputs: jax.Array
               ) -> tuple[jax.Array, Callable[[jax.Array], jax.Array]]:
  """`(pixels, to_input)`: model inputs mapped back to [0, 1] pixel space.

  Attacks on images are defined in pixel space (`eps = 8/255`), while the
  harness hands methods normalised inputs. `normalize` (the data config's
  `ctx.normalize`, per-channel affine, or the identity) is inverted from
  its values at 0 and 1, so `to_input(pixels)` equals `inputs` up to float
  rounding. Shapes: `inputs` `[b, ...]`.
  """
  ones = (1,) * inputs.ndim
  low = normalize(jnp.zeros(ones, inputs.dtype))
  scale = normalize(jnp.ones(ones, inputs.dtype)) - low
  return (inputs - low) / scale, lambda pixels: pixels * scale + low

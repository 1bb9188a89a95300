"""GIFD: gradient inversion in a generator's feature domain, and baselines.

Paper: Fang, Chen, Wang, Wang, Xia, "GIFD: A Generative
Gradient Inversion Method with Feature Domain Optimization", ICCV 2023,
arXiv:2308.04699. Official code: ffhibnese/GIFD_Gradient_Inversion_Attack
(`inversefed/reconstruction_algorithms.py`: `reconstruction_costs`,
`_gradient_closure`, `invert_biggan`, `inter_optimizer`, `get_lr`,
`infer_label`; `inversefed/utils.py`: `project_onto_l1_ball`).

What it is for: auditing how much of a client's private images the
gradients it shares in federated learning reveal. An attacker who sees the
gradient `g = d loss(victim(x), y) / d theta` of a batch searches for images
whose gradient matches it:

* label inference (iDLG, Zhao et al. 2020): with softmax cross-entropy the
  last layer's weight gradient column `sum_d dL/dW[d, c]` is negative only
  for the labels in the batch (non-negative features), so the `n` most
  negative columns are the labels (`infer_labels`, the official
  `infer_label`);
* the matching loss is one minus the cosine between the flattened gradients
  of all parameters (`grad_match_loss`, the official `sim_cmpr0` cost), plus
  `tv_weight` times the anisotropic total variation (`total_variation`);
* pixel space ("Inverting Gradients", Geiping et al. 2020): Adam on the
  image from Gaussian noise, learning rate cut by 10 at 3/8, 5/8, 7/8 of the
  steps, images boxed to [0, 1] after each step (`invert_pixels`);
* latent only (GGL / the latent stage of GIAS): Adam on a generator's input
  `z`, kept on its starting sphere (`invert_latent`). GGL itself searches
  `z` with CMA-ES; here the gradient-based search of the official GIFD first
  stage is used for both, so the two arms differ only in the feature stages;
* GIFD (`invert_gifd`): the latent stage, then for each intermediate layer
  `k = 1..K` of the generator, Adam on the feature map `f_k` the previous
  stage ends at, with `f_k - f_k^0` projected after every step onto the l1
  ball of radius `r_k` (`l1_ball_project`, exact, Duchi et al. 2008); every
  stage's image is scored by the matching loss and the best is kept.

Each stage is an inner optimisation *solver* over images / latents /
features for one observed gradient, not a training step of any model: the
victim and the generator stay frozen, so it runs with optax under
`lax.scan` here (listed in `tests/test_layering.py`), vmapped over restarts
and over victim batches. The generator is any `forward(f, start, end)`
between its layers (layer 0 = `z`, layer `L` = images in [-1, 1]).

Deviation kept visible: the official `choose_optimal` returns the last
restart's image (`x[trial]` after the loop) with the best restart's score;
here the image of the best restart is returned.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import optax

PyTree = Any
# forward(features, start_layer, end_layer) -> features at end_layer.
Forward = Callable[[jax.Array, int, int], jax.Array]
# victim_grads(images [n, h, w, c], labels [n]) -> gradient pytree.
VictimGrads = Callable[[jax.Array, jax.Array], PyTree]


def victim_gradients(apply_fn: Callable[[PyTree, jax.Array], jax.Array],
                     params: PyTree, images: jax.Array,
                     labels: jax.Array) -> PyTree:
  """The shared gradient: d mean CE(apply_fn(params, images), labels)/d params.

  Args:
    apply_fn: `(params, images [n, h, w, c]) -> logits [n, C]`.
    params: the victim's parameters.
    images: `[n, h, w, c]` the client's batch.
    labels: `[n]` int labels.
  """
  def loss(p):
    logits = apply_fn(p, images)
    return optax.softmax_cross_entropy_with_integer_labels(
        logits, labels).mean()
  return jax.grad(loss)(params)


def grad_match_loss(trial: PyTree, target: PyTree) -> jax.Array:
  """1 - cos(trial, target) over all leaves flattened together (official
  `sim_cmpr0`); 0 when the gradients are parallel."""
  t = jax.tree.leaves(trial)
  g = jax.tree.leaves(target)
  dot = sum(jnp.vdot(a, b) for a, b in zip(t, g))
  nt = sum(jnp.vdot(a, a) for a in t)
  ng = sum(jnp.vdot(b, b) for b in g)
  return 1.0 - dot / jnp.sqrt(nt * ng + 1e-30)


def total_variation(images: jax.Array) -> jax.Array:
  """Anisotropic TV of `[n, h, w, c]`: mean |dx| + mean |dy| (official)."""
  dx = jnp.mean(jnp.abs(images[:, :, 1:] - images[:, :, :-1]))
  dy = jnp.mean(jnp.abs(images[:, 1:] - images[:, :-1]))
  return dx + dy


def infer_labels(last_kernel_grad: jax.Array, n: int) -> jax.Array:
  """iDLG labels `[n]` (ascending) from the last Dense kernel's gradient
  `[d, C]`: the `n` classes with the most negative column sums."""
  scores = jnp.sum(last_kernel_grad, axis=0)
  return jnp.sort(jnp.argsort(scores)[:n])


def l1_ball_project(v: jax.Array, radius: jax.Array) -> jax.Array:
  """Euclidean projection of each row of `v` `[n, ...]` onto the l1 ball
  `{w : ||w||_1 <= radius}` (Duchi et al. 2008, sort-based, exact)."""
  flat = v.reshape(v.shape[0], -1)
  mag = jnp.abs(flat)
  mu = -jnp.sort(-mag, axis=1)                      # descending
  csum = jnp.cumsum(mu, axis=1)
  k = jnp.arange(1, flat.shape[1] + 1, dtype=flat.dtype)
  rho = jnp.sum(mu * k > csum - radius, axis=1)     # support size
  rho = jnp.maximum(rho, 1)
  theta = (jnp.take_along_axis(csum, rho[:, None] - 1, axis=1)[:, 0]
           - radius) / rho
  proj = jnp.sign(flat) * jnp.maximum(mag - theta[:, None], 0.0)
  inside = jnp.sum(mag, axis=1, keepdims=True) <= radius
  return jnp.where(inside, flat, proj).reshape(v.shape)


def sphere_project(z: jax.Array, radii: jax.Array) -> jax.Array:
  """Rescales each row of `z` `[n, d]` to norm `radii` `[n, 1]`."""
  return z / (jnp.linalg.norm(z, axis=1, keepdims=True) + 1e-9) * radii


def cosine_ramp(learning_rate: jax.Array, steps: int, rampdown: float = 0.75,
                rampup: float = 0.05) -> optax.Schedule:
  """The official `get_lr`: linear warm-up over `rampup` of the steps and a
  half-cosine decay to 0 over the last `rampdown`."""
  def schedule(count):
    t = count / steps
    down = jnp.minimum(1.0, (1.0 - t) / rampdown)
    ramp = (0.5 - 0.5 * jnp.cos(down * jnp.pi)) * jnp.minimum(1.0, t / rampup)
    return learning_rate * ramp
  return schedule


def multistep(learning_rate: jax.Array, steps: int) -> optax.Schedule:
  """Inverting Gradients' schedule: x0.1 at 3/8, 5/8 and 7/8 of the steps."""
  bounds = jnp.array([steps // 2.667, steps // 1.6, steps // 1.142])
  return lambda count: learning_rate * 0.1 ** jnp.sum(count >= bounds)


class Objective(NamedTuple):
  """The attacker's objective for one observed gradient."""
  victim_grads: VictimGrads
  target: PyTree          # the observed gradient
  labels: jax.Array       # [n] inferred labels
  tv_weight: jax.Array

  def score(self, images: jax.Array) -> jax.Array:
    """The matching loss alone (how restarts and stages are ranked)."""
    return grad_match_loss(self.victim_grads(images, self.labels),
                           self.target)

  def __call__(self, images: jax.Array) -> jax.Array:
    return self.score(images) + self.tv_weight * total_variation(images)


def _solve(loss_fn: Callable[[jax.Array], jax.Array], x0: jax.Array,
           schedule: optax.Schedule, steps: int,
           project: Callable[[jax.Array], jax.Array]) -> jax.Array:
  """Adam on `x0` for `steps` steps, `project` after each; returns x."""
  opt = optax.adam(schedule)

  def body(carry, _):
    x, state = carry
    grads = jax.grad(loss_fn)(x)
    updates, state = opt.update(grads, state, x)
    return (project(optax.apply_updates(x, updates)), state), None

  (x, _), _ = jax.lax.scan(body, (x0, opt.init(x0)), None, length=steps)
  return x


def _to_unit(generated: jax.Array) -> jax.Array:
  """Generator output in [-1, 1] -> images in [0, 1] (official mapping)."""
  return (generated + 1.0) / 2.0


def invert_pixels(objective: Objective, key: jax.Array,
                  shape: Sequence[int], steps: int,
                  learning_rate: jax.Array) -> jax.Array:
  """Inverting Gradients: images `shape` = `[n, h, w, c]` in [0, 1]."""
  x0 = jax.random.normal(key, tuple(shape))
  return _solve(objective, x0, multistep(learning_rate, steps), steps,
                lambda x: jnp.clip(x, 0.0, 1.0))


def invert_latent(objective: Objective, forward: Forward, num_layers: int,
                  z0: jax.Array, steps: int,
                  learning_rate: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Latent-only search from `z0` `[n, d]`: returns `(z, images)`."""
  radii = jnp.linalg.norm(z0, axis=1, keepdims=True)
  loss = lambda z: objective(_to_unit(forward(z, 0, num_layers)))
  z = _solve(loss, z0, cosine_ramp(learning_rate, steps), steps,
             lambda z: sphere_project(z, radii))
  return z, jnp.clip(_to_unit(forward(z, 0, num_layers)), 0.0, 1.0)


def invert_gifd(objective: Objective, forward: Forward, num_layers: int,
                z0: jax.Array, steps: Sequence[int],
                learning_rates: jax.Array,
                radii: jax.Array) -> tuple[jax.Array, jax.Array]:
  """GIFD: the latent stage, then feature stages at layers 1..K.

  Args:
    objective: the matching objective.
    forward: the generator between layers.
    num_layers: `L`, the image layer.
    z0: `[n, d]` initial latents.
    steps: steps of each stage, `K + 1` static ints (`K < L`).
    learning_rates: `[K + 1]` peak learning rates.
    radii: `[K + 1]` l1 radii of the feature stages (entry 0 unused).

  Returns:
    `(images [K + 1, n, h, w, c], scores [K + 1])`: each stage's clamped
    images and their matching loss.
  """
  z, image = invert_latent(objective, forward, num_layers, z0, steps[0],
                           learning_rates[0])
  images, scores = [image], [objective.score(image)]
  feature = forward(z, 0, 1)
  for k in range(1, len(steps)):
    start = feature
    loss = lambda f, k=k: objective(_to_unit(forward(f, k, num_layers)))
    project = lambda f, k=k, start=start: start + l1_ball_project(
        f - start, radii[k])
    feature = _solve(loss, start, cosine_ramp(learning_rates[k], steps[k]),
                     steps[k], project)
    image = jnp.clip(_to_unit(forward(feature, k, num_layers)), 0.0, 1.0)
    images.append(image)
    scores.append(objective.score(image))
    feature = forward(feature, k, k + 1)
  return jnp.stack(images), jnp.stack(scores)


def best_of(images: jax.Array, scores: jax.Array) -> tuple[jax.Array,
                                                           jax.Array]:
  """The candidate with the lowest score: `images [m, ...]`, `scores [m]`."""
  i = jnp.argmin(scores)
  return images[i], scores[i]


class Budget(NamedTuple):
  """The static shape of an attack: restarts and steps of every solver."""
  restarts: int
  pixel_steps: int
  latent_steps: int
  stage_steps: tuple[int, ...]      # GIFD: latent stage, then layers 1..K


def attack(victim_grads: VictimGrads, last_kernel: Callable[[PyTree],
                                                            jax.Array],
           forward: Forward, num_layers: int, latent_dim: int,
           target: PyTree, num_images: int, key: jax.Array, budget: Budget,
           hp: dict[str, jax.Array]) -> dict[str, jax.Array]:
  """The three attacks on one observed gradient, each the best of restarts.

  Args:
    victim_grads: the victim's gradient of a batch `(images, labels)`.
    last_kernel: picks the last Dense kernel `[d, C]` out of a gradient.
    forward, num_layers: the generator (see `invert_gifd`).
    latent_dim: `d` of `z`.
    target: the observed gradient of `num_images` images.
    key: randomness of the initial images and latents.
    budget: restarts and steps.
    hp: traced numbers: `tv_weight`, `pixel_lr`, `latent_lr`, `stage_lrs
      [K + 1]`, `radii [K + 1]`.

  Returns:
    `labels [n]` (iDLG), `pixel`, `latent`, `gifd` images `[n, h, w, c]` in
    [0, 1], their matching losses `<name>_score`, and `gifd_stage`, the
    stage GIFD's best image comes from.
  """
  labels = infer_labels(last_kernel(target), num_images)
  obj = Objective(victim_grads, target, labels, hp["tv_weight"])
  k_pix, k_z = jax.random.split(key)
  z0 = jax.random.normal(k_z, (budget.restarts, num_images, latent_dim))
  shape = jax.eval_shape(lambda z: forward(z, 0, num_layers), z0[0]).shape
  pixels = jax.vmap(lambda k: invert_pixels(
      obj, k, shape, budget.pixel_steps, hp["pixel_lr"]))(
          jax.random.split(k_pix, budget.restarts))
  _, latents = jax.vmap(lambda z: invert_latent(
      obj, forward, num_layers, z, budget.latent_steps, hp["latent_lr"]))(z0)
  stages, stage_scores = jax.vmap(lambda z: invert_gifd(
      obj, forward, num_layers, z, budget.stage_steps, hp["stage_lrs"],
      hp["radii"]))(z0)
  out = {"labels": labels}
  for name, images in (("pixel", pixels), ("latent", latents)):
    out[name], out[f"{name}_score"] = best_of(images,
                                              jax.vmap(obj.score)(images))
  flat = stages.reshape((-1,) + stages.shape[2:])
  best = jnp.argmin(stage_scores.reshape(-1))
  out["gifd"], out["gifd_score"] = flat[best], stage_scores.reshape(-1)[best]
  out["gifd_stage"] = best % stages.shape[1]
  return out

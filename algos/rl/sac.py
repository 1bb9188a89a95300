"""Soft actor-critic: networks, tanh-Gaussian policy and the entropy terms.

Haarnoja et al., "Soft Actor-Critic Algorithms and Applications",
arXiv:1812.05905 (automatic temperature tuning). Reused by every
entropy-regularised RL paper in the repo (QARL's protagonist and adversary
are both SAC agents).

Everything here is a pure function of arrays. The temperature `alpha` is
either a scalar or one value per sample `[B]`: QARL's adversary reads its
temperature from each sample's observation, so every term broadcasts a
per-sample `alpha` (never averages it into one number first).

Conventions (as MushroomRL's SAC, which the QARL code builds on):
* the critic loss is the sum over the twin critics of each one's mean
  squared error to the shared soft target;
* the soft target bootstraps from the minimum of the twin target critics;
* the temperature loss is `-mean(log_alpha * (log_pi + target_entropy))`
  with `log_pi` held constant.

Not a `common.method.Method`: those are supervised classification losses
for the shared train step; RL keeps the purejaxrl shape (see
`algos/rl/adversarial_sac.py`) and shares only these terms.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

# Log of the tanh Jacobian uses this identity for numerical stability:
# log(1 - tanh(u)^2) = 2 * (log 2 - u - softplus(-2u)).
_LOG2 = jnp.log(2.0)


class TanhGaussianActor(nn.Module):
  """MLP giving the mean and log-std of a Gaussian squashed by tanh."""
  hidden: Sequence[int]
  action_dim: int
  log_std_min: float = -20.0
  log_std_max: float = 2.0

  @nn.compact
  def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
    """obs `[B, d]` -> (mean `[B, a]`, log_std `[B, a]`)."""
    x = obs
    for width in self.hidden:
      x = nn.relu(nn.Dense(width)(x))
    mean = nn.Dense(self.action_dim)(x)
    log_std = nn.Dense(self.action_dim)(x)
    return mean, jnp.clip(log_std, self.log_std_min, self.log_std_max)


class _QHead(nn.Module):
  hidden: Sequence[int]

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for width in self.hidden:
      x = nn.relu(nn.Dense(width)(x))
    return nn.Dense(1)(x)[..., 0]


class DoubleCritic(nn.Module):
  """Two independent Q-networks (clipped double Q), vmapped parameters."""
  hidden: Sequence[int]

  @nn.compact
  def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
    """obs `[B, d]`, action `[B, a]` -> Q-values `[2, B]`."""
    twin = nn.vmap(_QHead, variable_axes={"params": 0},
                   split_rngs={"params": True}, in_axes=None, out_axes=0,
                   axis_size=2)
    return twin(self.hidden)(jnp.concatenate([obs, action], axis=-1))


def tanh_gaussian_log_prob(pre_tanh: jax.Array, mean: jax.Array,
                           log_std: jax.Array) -> jax.Array:
  """log pi(tanh(u)) for u ~ N(mean, std): `[B, a]` inputs -> `[B]`.

  Change of variables: log N(u) - sum log(1 - tanh(u)^2).
  """
  z = (pre_tanh - mean) * jnp.exp(-log_std)
  gauss = -0.5 * z ** 2 - log_std - 0.5 * jnp.log(2.0 * jnp.pi)
  log_det = 2.0 * (_LOG2 - pre_tanh - jax.nn.softplus(-2.0 * pre_tanh))
  return jnp.sum(gauss - log_det, axis=-1)


def tanh_gaussian_sample(key: jax.Array, mean: jax.Array, log_std: jax.Array
                         ) -> tuple[jax.Array, jax.Array]:
  """Reparameterised sample in [-1, 1] `[B, a]` and its log-prob `[B]`."""
  pre_tanh = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
  return jnp.tanh(pre_tanh), tanh_gaussian_log_prob(pre_tanh, mean, log_std)


def soft_target(reward: jax.Array, done: jax.Array, next_q: jax.Array,
                next_log_prob: jax.Array, alpha: jax.Array,
                gamma: jax.Array) -> jax.Array:
  """r + gamma (1 - done) (min_i Q'_i(s', a') - alpha log pi(a'|s')) `[B]`.

  Args:
    reward: `[B]`; done: `[B]` 1 at absorbing states (not time limits).
    next_q: `[2, B]` target critics at (s', a' ~ pi).
    next_log_prob: `[B]`.
    alpha: scalar or `[B]` temperature.
    gamma: discount.
  """
  soft_v = jnp.min(next_q, axis=0) - alpha * next_log_prob
  return reward + gamma * (1.0 - done) * soft_v


def critic_loss(q: jax.Array, target: jax.Array) -> jax.Array:
  """Sum over the twin critics of their MSE to the (constant) target.

  q `[2, B]`, target `[B]` -> scalar.
  """
  target = jax.lax.stop_gradient(target)
  return jnp.sum(jnp.mean((q - target[None]) ** 2, axis=1))


def actor_loss(log_prob: jax.Array, q: jax.Array,
               alpha: jax.Array) -> jax.Array:
  """mean(alpha log pi(a|s) - min_i Q_i(s, a)); log_prob `[B]`, q `[2, B]`."""
  return jnp.mean(alpha * log_prob - jnp.min(q, axis=0))


def temperature_loss(log_alpha: jax.Array, log_prob: jax.Array,
                     target_entropy: float | jax.Array) -> jax.Array:
  """-mean(log_alpha (log pi + H_target)): raises alpha when entropy < H."""
  return -jnp.mean(log_alpha * jax.lax.stop_gradient(log_prob
                                                     + target_entropy))


def polyak(target: jax.Array, online: jax.Array, tau: jax.Array):
  """target <- (1 - tau) target + tau online, leaf by leaf."""
  return jax.tree.map(lambda t, o: (1.0 - tau) * t + tau * o, target, online)

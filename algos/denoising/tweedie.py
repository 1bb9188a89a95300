"""Tweedie denoising and blind noise-level estimation for Noise2Score.

Paper: Noise2Score: Tweedie's Approach to Self-Supervised Image Denoising
without Clean Images, Kim & Ye, NeurIPS 2021, arXiv:2106.07009.
Official code: https://github.com/cubeyoung/Noise2Score (PyTorch).

For noise from an exponential family `p(y|x) = h(y) exp(eta(x) T(y) -
A(x))`, Tweedie's formula gives the posterior mean of the natural parameter
from the score `s(y) = d/dy log p(y)` of the *noisy* marginal alone:
`E[eta | y] = s(y) - h'(y)/h(y)` (with `T(y) = y`). Noise2Score learns
`s` and applies (the paper's Table 1; `models/*_model.py`):

* Gaussian, `y = x + sigma n`: `x_hat = y + sigma^2 s(y)` (exact posterior
  mean).
* Gamma, `y = x * Gamma(k, 1/k)`: `x_hat = k y / ((k - 1) - y s(y))`; exact
  for the harmonic mean: `1 / x_hat = E[1/x | y]`.
* Poisson, `y = zeta z`, `z ~ Poisson(x / zeta)`: the network reads the
  counts `z` and `x_hat = (y + zeta/2) exp(s(z))` = `zeta exp(E[log
  lambda | z])` with `digamma(z + 1) ~ log(z + 1/2)` (the paper's
  approximation); `log_posterior_mean_poisson` is the exact form.

Blind estimation (the official `forward_tv` of `models/*_blind_model.py`):
the noise level is the one, on a grid, whose Tweedie estimate minimises a
Charbonnier total variation (plus, for Poisson and Gamma, the negative
log-likelihood of the noisy image under the estimate), per image.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

NOISES = ("gaussian", "poisson", "gamma")
# The official blind search ranges (`forward_tv`): sigma in /255 units,
# Poisson scale zeta, Gamma shape k.
BLIND_RANGES = {"gaussian": (5.0, 55.0), "poisson": (0.005, 0.1),
                "gamma": (40.0, 120.0)}
_TV_EPS = 1e-12      # the official L1_TVLoss_Charbonnier's e = (1e-6)^2


def _check(noise: str) -> None:
  if noise not in NOISES:
    raise ValueError(f"noise={noise!r}; allowed {NOISES}")


def model_input(noisy: jax.Array, noise: str, level: jax.Array) -> jax.Array:
  """What the score network reads: the noisy image, or the Poisson counts
  `y / zeta` (the official `self.lr = self.lr_in / self.eta`)."""
  _check(noise)
  return noisy / level if noise == "poisson" else noisy


def tweedie(noisy: jax.Array, score: jax.Array, noise: str,
            level: jax.Array) -> jax.Array:
  """The Tweedie estimate of the clean image.

  Args:
    noisy: `y [..]` in image units.
    score: `s [..]`, the score of the network's input (`model_input`).
    noise: "gaussian" (level = sigma * 255), "poisson" (level = zeta) or
      "gamma" (level = shape k).
    level: the noise parameter, in the units above.
  """
  _check(noise)
  if noise == "gaussian":
    return noisy + (level / 255.0) ** 2 * score
  if noise == "poisson":
    return (noisy + level / 2.0) * jnp.exp(score)
  return level * noisy / ((level - 1.0) - noisy * score)


def log_posterior_mean_poisson(counts: jax.Array,
                               score: jax.Array) -> jax.Array:
  """Exact `E[log lambda | z] = s(z) + digamma(z + 1)` for `z ~
  Poisson(lambda)` (the counts' marginal continued to real `z`)."""
  return score + jax.scipy.special.digamma(counts + 1.0)


def charbonnier_tv(images: np.ndarray) -> np.ndarray:
  """Mean Charbonnier total variation of `[n, h, w, c]` -> `[n]`."""
  dy = np.sqrt(np.diff(images, axis=1) ** 2 + _TV_EPS).mean(axis=(1, 2, 3))
  dx = np.sqrt(np.diff(images, axis=2) ** 2 + _TV_EPS).mean(axis=(1, 2, 3))
  return dy + dx


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
  axes = tuple(range(1, values.ndim))
  return (np.where(mask, values, 0.0).sum(axes)
          / np.maximum(mask.sum(axes), 1))


def blind_criterion(estimate: np.ndarray, noisy: np.ndarray,
                    noise: str) -> np.ndarray:
  """The official blind-search objective of each image `[n, h, w, c]` ->
  `[n]` (lower is better)."""
  _check(noise)
  if noise == "gaussian":
    return charbonnier_tv(estimate)
  pos = estimate > 0
  safe = np.where(pos, estimate, 1.0)
  if noise == "poisson":
    nll = _masked_mean(safe - noisy * np.log(safe), pos)
    return 0.1 * charbonnier_tv(np.maximum(estimate, 0.0)) + nll
  ratio = noisy / safe
  return charbonnier_tv(estimate) + _masked_mean(
      np.log(safe) + ratio + ratio ** 2, pos)


def blind_grid(noise: str, points: int) -> np.ndarray:
  """`points` candidate levels evenly over the official search range."""
  _check(noise)
  lo, hi = BLIND_RANGES[noise]
  return np.linspace(lo, hi, points)

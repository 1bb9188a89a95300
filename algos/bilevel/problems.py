"""Bilevel test problems of MAID (arXiv:2308.10098), as in the official code.

* `quadratic(seed)`: `Quadratic.py`: `g(x, theta) = 1/2 ||A2 x + A3 theta -
  b2||^2`, `f(x) = 1/2 ||A1 x - b1||^2`, `n = 1000`, `m = 10`, entries
  uniform [0, 1), `b1 = A1 x1 + 0.01 y1`, `b2 = A2 x2 + A3 theta_e + 0.01
  y2`. Known optimum: `theta* = argmin 1/2 ||A1 M (b2 - A3 theta) - b1||^2`
  with `M = (A2^T A2)^{-1} A2^T` (`exact`).
* `logistic(...)`: `MultiClassRegression.py` on embedded data: multinomial
  logistic regression without bias on scikit-learn's 8x8 digits (pixels /
  16), one weight per entry of the `[64, 10]` weight matrix, `g = CE_train
  + 1/2 sum (1e-3 + exp(theta)) x^2`, `f = CE_validation` (the official
  code uses 12x12 MNIST, train / test, and no fixed ridge).
* `tv_denoising(...)`: `TV_denoising.py` at 32x32 on embedded photographs.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from algos.bilevel import maid
from common.data import noisy_images


class Quadratic(NamedTuple):
  problem: maid.Problem
  theta_star: jax.Array     # [m] the upper-level optimum
  f_star: float
  x_star: object            # x_star(theta) -> [m]
  hypergradient: object     # exact h(theta) -> [m]
  x_init: jax.Array         # the official start x0 = x2


def quadratic(seed: int = 29, n: int = 1000, m: int = 10) -> Quadratic:
  """The official problem's recipe on JAX's random numbers for `seed`."""
  k = jax.random.split(jax.random.PRNGKey(seed), 8)
  dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
  a1, a2, a3 = (jax.random.uniform(k[i], (n, m), dtype) for i in range(3))
  x1, x2, theta_e = (jax.random.uniform(k[3 + i], (m,), dtype)
                     for i in range(3))
  b1 = a1 @ x1 + 0.01 * jax.random.normal(k[6], (n,), dtype)
  b2 = a2 @ x2 + a3 @ theta_e + 0.01 * jax.random.normal(k[7], (n,), dtype)
  return quadratic_from(a1, a2, a3, b1, b2, x2)


def quadratic_from(a1, a2, a3, b1, b2, x_init,
                   stop_mu_factor: float = 1.0) -> Quadratic:
  """The quadratic problem on given `A1, A2, A3 [n, m]`, `b1, b2 [n]`
  (the parity test passes the official script's torch draws)."""
  a1, a2, a3, b1, b2, x_init = (jnp.asarray(v) for v in
                                (a1, a2, a3, b1, b2, x_init))
  gram = a2.T @ a2
  eig = jnp.linalg.eigvalsh(gram)
  solve = lambda r: jnp.linalg.solve(gram, a2.T @ r)
  x_star = lambda theta: solve(b2 - a3 @ theta)
  design = a1 @ jnp.linalg.solve(gram, a2.T @ a3)          # A1 M A3 [n, m]
  theta_star = jnp.linalg.lstsq(design, a1 @ solve(b2) - b1)[0]
  upper = lambda x: 0.5 * jnp.sum((a1 @ x - b1) ** 2)
  lower = lambda x, theta: 0.5 * jnp.sum((a2 @ x + a3 @ theta - b2) ** 2)
  problem = maid.Problem(
      upper=upper, lower=lower, mu=lambda theta: eig[0],
      lip=lambda theta: eig[-1],
      lip_upper=float(jnp.linalg.eigvalsh(a1.T @ a1)[-1]),
      stop_mu_factor=stop_mu_factor)
  return Quadratic(problem, theta_star, float(upper(x_star(theta_star))),
                   x_star, lambda th: -design.T @ (a1 @ x_star(th) - b1),
                   x_init)


def _ce(logits, labels):
  return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits),
                                       labels[:, None], axis=1))


def logistic(num_train: int = 1000, seed: int = 0, ridge: float = 1e-3,
             official_mu: bool = False) -> tuple[maid.Problem, dict]:
  """The digits problem and its data `{"x_train", "y_train", "x_val",
  "y_val"}` (the upper level is the validation cross-entropy; the split is
  drawn from `seed`).

  `g(w, theta) = CE_train(w) + 1/2 sum (ridge + exp(theta)) w^2`: the fixed
  `ridge` (ours) keeps `mu = ridge + min exp(theta)` away from 0, so that
  the lower solver's stop `||grad|| / mu < eps` still certifies `||w - w*||
  <= eps` once some weights' exp(theta) -> 0 (without it every solve runs
  to its cap). The official `FISTA` instead sets mu = L - 1e-3 (L by power
  iteration), which certifies nothing; `official_mu=True` uses `L - 1e-3`
  with our `L` (for the study of what that changes).
  """
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  d = datasets.load_digits()
  x = jnp.asarray(d.data / 16.0, jnp.float32)
  y = jnp.asarray(d.target, jnp.int32)
  order = np.random.default_rng(seed).permutation(len(x))
  tr, va = order[:num_train], order[num_train:]
  xt, yt, xv, yv = x[tr], y[tr], x[va], y[va]
  lip_ce = float(jnp.linalg.eigvalsh(xt.T @ xt)[-1]) / (2 * len(xt))
  problem = maid.Problem(
      upper=lambda w: _ce(xv @ w, yv),
      lower=lambda w, theta: _ce(xt @ w, yt) + 0.5 * jnp.sum(
          (ridge + jnp.exp(theta)) * w ** 2),
      mu=lambda theta: (lip_ce + ridge + jnp.max(jnp.exp(theta)) - 1e-3
                        if official_mu else ridge + jnp.min(jnp.exp(theta))),
      lip=lambda theta: lip_ce + ridge + jnp.max(jnp.exp(theta)),
      lip_upper=float(jnp.linalg.eigvalsh(xv.T @ xv)[-1]) / (2 * len(xv)))
  return problem, {"x_train": xt, "y_train": yt, "x_val": xv, "y_val": yv}


class Denoising(NamedTuple):
  problem: maid.Problem
  clean: jax.Array          # [N, s, s] in [0, 1]
  noisy: jax.Array          # [N, s, s]


def embedded_images(size: int) -> np.ndarray:
  """`[8, size, size]` grey images in [0, 1]: the centre squares of
  scikit-learn's two sample photographs, each resized to `2 size` and cut
  into four quadrants (small enough for CPU studies)."""
  from scipy import ndimage  # pylint: disable=g-import-not-at-top
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  out = []
  for rgb in datasets.load_sample_images().images:
    grey = noisy_images._grey(rgb)  # pylint: disable=protected-access
    h, w = grey.shape
    side = min(h, w)
    square = grey[(h - side) // 2:(h + side) // 2,
                  (w - side) // 2:(w + side) // 2]
    big = np.clip(ndimage.zoom(square, 2 * size / side, order=1), 0.0, 1.0)
    out += [big[i:i + size, j:j + size] for i in (0, size)
            for j in (0, size)]
  return np.stack(out)


def tv_denoising(seed: int = 0, size: int = 32, noise_std: float = 0.1,
                 num_images: int = 8) -> Denoising:
  """`TV_denoising.py`'s problem at small size on embedded images.

  `g(x, theta) = 1/2 ||x - y||^2 + 1/2 e^{theta_0} sum sqrt(Dx^2 +
  e^{2 theta_1})` (forward differences along both image axes, summed over
  the images), `f(x) = 1/(2N) ||x - x_clean||^2`. `mu = 1`, `L = 1 + 4
  e^{theta_0 - theta_1}` (`||D||^2 <= 8`, curvature of the smoothed norm
  <= 1/nu). The official code divides `g` by N (which leaves the solution
  and the hypergradient unchanged) yet uses mu = 1 and L = 1 + sqrt(8)
  e^{theta_0 - theta_1}: we keep the unscaled `g`, whose constants these
  are. The noise realisation is drawn from `seed`.
  """
  clean = embedded_images(size)[:num_images]
  rng = np.random.default_rng(seed)
  noisy = clean + noise_std * rng.standard_normal(clean.shape)
  clean, noisy = jnp.asarray(clean, jnp.float32), jnp.asarray(noisy,
                                                              jnp.float32)
  n = clean.shape[0]

  def tv(x, nu):
    dx, dy = jnp.diff(x, axis=1), jnp.diff(x, axis=2)
    return (jnp.sum(jnp.sqrt(dx ** 2 + nu ** 2))
            + jnp.sum(jnp.sqrt(dy ** 2 + nu ** 2)))

  problem = maid.Problem(
      upper=lambda x: 0.5 * jnp.sum((x - clean) ** 2) / n,
      lower=lambda x, theta: 0.5 * jnp.sum((x - noisy) ** 2) + 0.5 * jnp.exp(
          theta[0]) * tv(x, jnp.exp(theta[1])),
      mu=lambda theta: jnp.ones(()),
      lip=lambda theta: 1 + 4 * jnp.exp(theta[0] - theta[1]),
      lip_upper=1.0 / n)
  return Denoising(problem, clean, noisy)

"""Dynamical-systems reconstruction metrics (pure JAX).

The measures of the Durstewitz lab's DS-reconstruction papers, as computed
in the official GTF code (DurstewitzLab/GTF-shPLRNN, `src/measures/`):

* `state_space_divergence` (D_stsp): KL divergence between the state-space
  occupation of a reference trajectory and a generated one. Binned
  (`n_bins` per dimension over the reference's range +- 0.1 std, Laplace
  smoothing 1e-5) below 6 dimensions; above, a Monte-Carlo KL between
  Gaussian mixtures with one isotropic component (variance `scaling`) per
  time step (Hershey & Olsen 2007), as the official `decide_on_measure`.
* `power_spectrum_error` (D_H): per dimension, the z-scored series' power
  spectrum |rfft|^2, Gaussian-smoothed (std `smoothing` frequency bins,
  radius 4 std, mirrored edges), clipped at 0 and normalised to sum 1; the
  Hellinger distance between the two spectra, averaged over dimensions.
* `prediction_error_curve`: n-step-ahead MSE from every state of a
  reference trajectory, for n = 1..horizon (the official `prediction_error`
  is the last entry).
* `max_lyapunov`: the largest Lyapunov exponent of a map by tangent
  propagation (`jax.jvp`) with renormalisation each step.

Trajectories are `[T, d]` arrays (time first).
"""

from __future__ import annotations

from typing import Callable

import functools

import jax
import jax.numpy as jnp

_SMOOTH = 1e-5            # Laplace smoothing of the histograms
# log of the smallest positive float32 (subnormal): where the official
# Float32 GMM likelihood underflows to 0 and the sample is dropped.
_LOG_F32_TINY = -103.279


def _histogram(x: jax.Array, lo: jax.Array, hi: jax.Array,
               n_bins: int) -> jax.Array:
  """Counts [n_bins ** d] of x [T, d] on a regular grid; outside dropped."""
  d = x.shape[1]
  idx = jnp.floor((x - lo) / (hi - lo) * n_bins).astype(jnp.int32)
  # The last edge is inclusive, as in StatsBase's closed-right last bin.
  idx = jnp.where(x == hi, n_bins - 1, idx)
  inside = jnp.all((idx >= 0) & (idx < n_bins), axis=1)
  flat = jnp.sum(jnp.clip(idx, 0, n_bins - 1)
                 * (n_bins ** jnp.arange(d - 1, -1, -1)), axis=1)
  return jnp.zeros((n_bins ** d,), jnp.float32).at[flat].add(
      inside.astype(jnp.float32))


@functools.partial(jax.jit, static_argnames=("n_bins",))
def state_space_divergence_binned(x_true: jax.Array, x_gen: jax.Array,
                                  n_bins: int = 30) -> jax.Array:
  """Binned KL(p_true || p_gen) of state occupation; NaN if gen is empty.

  Args:
    x_true: [T, d] reference trajectory (defines the grid).
    x_gen: [T', d] generated trajectory.
    n_bins: bins per dimension (static); the grid has n_bins ** d cells.
  """
  sd = jnp.std(x_true, axis=0, ddof=1)
  lo = x_true.min(0) - 0.1 * sd
  hi = x_true.max(0) + 0.1 * sd
  h_true = _histogram(x_true, lo, hi, n_bins)
  h_gen = _histogram(x_gen, lo, hi, n_bins)
  cells = h_true.shape[0]
  p = (h_true + _SMOOTH) / (h_true.sum() + _SMOOTH * cells)
  q = (h_gen + _SMOOTH) / (h_gen.sum() + _SMOOTH * cells)
  kl = jnp.sum(p * (jnp.log(p) - jnp.log(q)))
  return jnp.where(h_gen.sum() > 0, kl, jnp.nan)


def _log_gmm(samples: jax.Array, centers: jax.Array, sigma) -> jax.Array:
  """log of mean_t N(sample; center_t, sigma^2 I), without (2 pi)^(d/2).

  samples [S, d], centers [T, d] -> [S] (the constant cancels in the KL).
  """
  sq = (jnp.sum(samples ** 2, 1)[:, None] + jnp.sum(centers ** 2, 1)[None]
        - 2.0 * samples @ centers.T)
  e = -0.5 * jnp.maximum(sq, 0.0) / sigma ** 2
  d = samples.shape[1]
  return (jax.nn.logsumexp(e, axis=1) - jnp.log(centers.shape[0])
          - d * jnp.log(sigma))


@functools.partial(jax.jit, static_argnames=("max_t", "mc_samples"))
def state_space_divergence_gmm(x_true: jax.Array, x_gen: jax.Array,
                               rng: jax.Array, scaling: float = 1.0,
                               max_t: int = 10_000,
                               mc_samples: int = 1000) -> jax.Array:
  """Monte-Carlo KL between per-time-step Gaussian mixtures.

  Samples come from the reference mixture (a random reference state plus
  N(0, scaling I)); KL = mean(log p - log q). Samples where either density
  underflows in float32 are dropped, as in the official code.

  Args:
    x_true: [T, d]; x_gen: [T', d] (both cut to the first max_t steps).
    rng: key for the Monte-Carlo samples.
    scaling: the components' variance sigma^2.
  """
  x_true, x_gen = x_true[:max_t], x_gen[:max_t]
  sigma = jnp.sqrt(jnp.asarray(scaling, jnp.float32))
  k_t, k_n = jax.random.split(rng)
  t = jax.random.randint(k_t, (mc_samples,), 0, x_true.shape[0])
  samples = x_true[t] + sigma * jax.random.normal(
      k_n, (mc_samples, x_true.shape[1]))
  log_p = _log_gmm(samples, x_true, sigma)
  log_q = _log_gmm(samples, x_gen, sigma)
  keep = (log_p > _LOG_F32_TINY) & (log_q > _LOG_F32_TINY)
  return jnp.sum(jnp.where(keep, log_p - log_q, 0.0)) / jnp.maximum(
      keep.sum(), 1)


def state_space_divergence(x_true: jax.Array, x_gen: jax.Array, *,
                           n_bins: int = 30, scaling: float = 1.0,
                           rng: jax.Array | None = None) -> jax.Array:
  """D_stsp: binned below 6 dimensions, GMM-based from 6 on (official)."""
  if x_true.shape[1] < 6:
    return state_space_divergence_binned(x_true, x_gen, n_bins)
  rng = jax.random.PRNGKey(0) if rng is None else rng
  return state_space_divergence_gmm(x_true, x_gen, rng, scaling)


def _gaussian_smooth(ps: jax.Array, sigma: float) -> jax.Array:
  """Smooth each column of ps [F, d]: Gaussian kernel, radius 4 sigma."""
  radius = int(4 * sigma + 0.5)
  k = jnp.exp(-0.5 * (jnp.arange(-radius, radius + 1) / sigma) ** 2)
  k = k / k.sum()
  # Whole-sample mirror at the edges (ImageFiltering's "reflect").
  padded = jnp.pad(ps, ((radius, radius), (0, 0)), mode="reflect")
  return jax.vmap(lambda c: jnp.convolve(c, k, mode="valid"), 1, 1)(padded)


def power_spectra(x: jax.Array, smoothing: float = 20.0) -> jax.Array:
  """Normalised, smoothed power spectra [T // 2 + 1, d] of x [T, d]."""
  z = (x - x.mean(0)) / jnp.std(x, axis=0, ddof=1)
  ps = jnp.abs(jnp.fft.rfft(z, axis=0)) ** 2
  if smoothing > 0:
    ps = jnp.maximum(_gaussian_smooth(ps, smoothing), 0.0)
  return ps / ps.sum(0)


@functools.partial(jax.jit, static_argnames=("smoothing", "per_dimension"))
def power_spectrum_error(x_true: jax.Array, x_gen: jax.Array,
                         smoothing: float = 20.0,
                         per_dimension: bool = False) -> jax.Array:
  """D_H: mean over dims of the Hellinger distance of the power spectra.

  Args:
    x_true, x_gen: [T, d] of equal shapes.
    smoothing: std of the Gaussian smoothing in frequency bins (static).
    per_dimension: return [d] instead of the mean.
  """
  if x_true.shape != x_gen.shape:  # static shapes: checked at trace time
    raise ValueError(f"power_spectrum_error needs equal shapes, got "
                     f"{x_true.shape} and {x_gen.shape}")
  p, q = power_spectra(x_true, smoothing), power_spectra(x_gen, smoothing)
  hd = jnp.sqrt(jnp.sum((jnp.sqrt(p) - jnp.sqrt(q)) ** 2, 0)) / jnp.sqrt(2.)
  return hd if per_dimension else hd.mean()


def prediction_error_curve(step: Callable[[jax.Array], jax.Array],
                           x: jax.Array, horizon: int,
                           init: Callable[[jax.Array], jax.Array] = (
                               lambda x: x),
                           observe: Callable[[jax.Array], jax.Array] = (
                               lambda z: z)) -> jax.Array:
  """n-step-ahead MSE for n = 1..horizon from every reference state.

  Args:
    step: latent map z [B, m] -> [B, m].
    x: [T, d] reference trajectory.
    horizon: largest n (static).
    init: observations [B, d] -> latent states [B, m].
    observe: latent [B, m] -> observations [B, d].

  Returns:
    [horizon]: entry n-1 = mean over t of |observe(step^n(init(x_t))) -
    x_{t+n}|^2 / d, t = 0..T-horizon-1 (the same starts for every n).
  """
  starts = x.shape[0] - horizon
  targets = jnp.stack([x[n:n + starts] for n in range(1, horizon + 1)])

  def body(z, target):
    z = step(z)
    return z, jnp.mean((observe(z) - target) ** 2)

  _, curve = jax.lax.scan(body, init(x[:starts]), targets)
  return curve


def max_lyapunov(step: Callable[[jax.Array], jax.Array], z0: jax.Array,
                 num_steps: int, dt: float = 1.0, burn_in: int = 0,
                 rng: jax.Array | None = None) -> jax.Array:
  """Largest Lyapunov exponent of the map `step` (per unit time dt).

  Propagates a tangent vector with `jax.jvp`, renormalising each step;
  lambda_max = mean(log growth) / dt over num_steps after burn_in steps.
  z0: [m] state (one trajectory).
  """
  rng = jax.random.PRNGKey(0) if rng is None else rng
  z = jax.lax.fori_loop(0, burn_in, lambda _, z: step(z), z0)
  v = jax.random.normal(rng, z.shape, z.dtype)
  v = v / jnp.linalg.norm(v)

  def body(carry, _):
    z, v = carry
    z, v = jax.jvp(step, (z,), (v,))
    g = jnp.linalg.norm(v)
    return (z, v / g), jnp.log(g)

  _, logs = jax.lax.scan(body, (z, v), None, length=num_steps)
  return logs.mean() / dt

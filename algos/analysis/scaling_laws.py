"""Scaling-law fits with an asymptote, bootstrap CIs and crossovers.

Shared analysis tools (pure numpy / scipy, no JAX, usable on any table of
losses), written once for the scaling papers of the repo:

* Pre-training under infinite compute. Kim, Kotha, Liang, Hashimoto 2025,
  arXiv:2509.14786, marin-community/marin `experiments/data_efficiency`
  (`plotting.py` fits `L(N) = A / N^alpha + E` and reads the asymptote
  `E`): parameter-scaling and ensemble-scaling laws and their asymptotes;
* Rethinking Conventional Wisdom in Machine Learning: From Generalization
  to Scaling. Xiao 2024, arXiv:2409.15156 (no official code): the
  "scaling-law crossover" of two recipes;
* token_crisis: the bootstrap interval of its paired degradation.

The fit `L(N) = A * N^-alpha + E` is a variable-projection least squares:
for a fixed exponent the model is linear in `(A, E)`, solved in closed form,
so only `alpha` is searched (a log grid, then a bounded scalar refinement).
That is deterministic, needs no initial guess and is fast enough to refit
thousands of bootstrap resamples.

Bootstrap: `y_by_seed[i]` holds the losses of size `N[i]` over seeds; a
resample draws, independently per size, as many seeds with replacement,
averages them and refits. Percentile intervals.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
from scipy import optimize

_ALPHA_RANGE = (1e-3, 4.0)


class PowerLawFit(NamedTuple):
  """`L(N) = a * N^-alpha + e` and its sum of squared residuals."""
  a: float
  alpha: float
  e: float
  sse: float


def power_law(n: np.ndarray, a: float, alpha: float, e: float) -> np.ndarray:
  """`a * n^-alpha + e` (n > 0)."""
  return a * np.power(np.asarray(n, np.float64), -alpha) + e


def _solve_linear(x: np.ndarray, y: np.ndarray, fit_asymptote: bool
                  ) -> tuple[float, float, float]:
  """`(a, e, sse)` of the least-squares `y = a x + e` (e = 0 if not fitted),
  with `a >= 0` (a loss that falls with scale)."""
  if fit_asymptote:
    design = np.stack([x, np.ones_like(x)], 1)
    (a, e), *_ = np.linalg.lstsq(design, y, rcond=None)
    if a < 0:                                   # flat data: a = 0, e = mean
      a, e = 0.0, float(y.mean())
  else:
    a, e = max(float(x @ y / (x @ x)), 0.0), 0.0
  r = y - a * x - e
  return float(a), float(e), float(r @ r)


def _grid_sse(u: np.ndarray, y: np.ndarray, alphas: np.ndarray,
              fit_asymptote: bool) -> np.ndarray:
  """`[G]` residual sums of `_solve_linear` at every exponent at once."""
  x = u[None, :] ** -alphas[:, None]                      # [G, P]
  if fit_asymptote:
    xm, ym = x.mean(1, keepdims=True), y.mean()
    var = np.sum((x - xm) ** 2, 1)
    a = np.sum((x - xm) * (y - ym), 1) / np.maximum(var, 1e-300)
    a = np.maximum(a, 0.0)
    e = ym - a * xm[:, 0]
  else:
    a = np.maximum(x @ y / np.sum(x * x, 1), 0.0)
    e = np.zeros_like(a)
  r = y[None, :] - a[:, None] * x - e[:, None]
  return np.sum(r * r, 1)


def fit_power_law(n: Sequence[float], y: Sequence[float], *,
                  fit_asymptote: bool = True,
                  alpha_range: tuple[float, float] = _ALPHA_RANGE
                  ) -> PowerLawFit:
  """Least-squares fit of `y = a * n^-alpha + e`.

  Args:
    n: `[P]` positive scales (parameters, ensemble members, tokens).
    y: `[P]` losses at those scales.
    fit_asymptote: fit `e` (else `e = 0`, a pure power law).
    alpha_range: the searched exponents.

  Returns:
    The `PowerLawFit` (`a` in the units of `n`).
  """
  n = np.asarray(n, np.float64)
  y = np.asarray(y, np.float64)
  if n.ndim != 1 or n.shape != y.shape:
    raise ValueError(f"n and y must be 1-D of one length; got {n.shape} and "
                     f"{y.shape}")
  if len(n) < (3 if fit_asymptote else 2) or np.any(n <= 0):
    raise ValueError(f"need >= {3 if fit_asymptote else 2} positive scales "
                     f"to fit a power law; got n={n.tolist()}")
  ref = float(np.exp(np.mean(np.log(n))))     # conditioning: n / ref ~ 1
  u = n / ref

  def sse(alpha):
    return _solve_linear(u ** -alpha, y, fit_asymptote)[2]

  grid = np.geomspace(*alpha_range, 200)
  k = int(np.argmin(_grid_sse(u, y, grid, fit_asymptote)))
  lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
  alpha = float(optimize.minimize_scalar(
      sse, bounds=(lo, hi), method="bounded",
      options={"xatol": 1e-10}).x) if hi > lo else float(grid[k])
  if sse(grid[k]) < sse(alpha):
    alpha = float(grid[k])
  a, e, s = _solve_linear(u ** -alpha, y, fit_asymptote)
  return PowerLawFit(a=a * ref ** alpha, alpha=alpha, e=e, sse=s)


def _as_seed_lists(y_by_seed) -> list[np.ndarray]:
  out = [np.asarray(v, np.float64).reshape(-1) for v in y_by_seed]
  if any(len(v) == 0 for v in out):
    raise ValueError("every scale needs at least one seed's loss")
  return out


def bootstrap_fits(n: Sequence[float], y_by_seed, *, num_boot: int = 1000,
                   seed: int = 0, fit_asymptote: bool = True
                   ) -> list[PowerLawFit]:
  """Power-law fits of `num_boot` seed resamples (see the module doc).

  Args:
    n: `[P]` scales.
    y_by_seed: `P` sequences of per-seed losses (lengths may differ).
    num_boot: resamples.
    seed: numpy seed of the resampling.
    fit_asymptote: as `fit_power_law`.
  """
  ys = _as_seed_lists(y_by_seed)
  rng = np.random.default_rng(seed)
  fits = []
  for _ in range(num_boot):
    means = [v[rng.integers(0, len(v), len(v))].mean() for v in ys]
    fits.append(fit_power_law(n, means, fit_asymptote=fit_asymptote))
  return fits


def percentile_ci(samples: Sequence[float], level: float = 0.95
                  ) -> tuple[float, float]:
  """The central `level` percentile interval of `samples` (NaNs dropped)."""
  s = np.asarray(samples, np.float64)
  s = s[np.isfinite(s)]
  if not 0 < level < 1 or len(s) == 0:
    raise ValueError(f"level must be in (0, 1) and samples non-empty; got "
                     f"level={level}, {len(s)} finite samples")
  q = (1 - level) / 2
  return float(np.quantile(s, q)), float(np.quantile(s, 1 - q))


def bootstrap_mean_ci(values: Sequence[float], *, num_boot: int = 2000,
                      level: float = 0.95, seed: int = 0
                      ) -> tuple[float, float]:
  """Percentile bootstrap interval of the mean of `values` (e.g. paired
  per-seed differences)."""
  v = np.asarray(values, np.float64).reshape(-1)
  rng = np.random.default_rng(seed)
  idx = rng.integers(0, len(v), (num_boot, len(v)))
  return percentile_ci(v[idx].mean(1), level)


def fit_with_ci(n: Sequence[float], y_by_seed, *, num_boot: int = 1000,
                level: float = 0.95, seed: int = 0) -> dict[str, float]:
  """The fit of the seed means and percentile CIs of `a`, `alpha`, `e`:
  `{"a", "alpha", "e", "<name>_lo", "<name>_hi"}`."""
  ys = _as_seed_lists(y_by_seed)
  fit = fit_power_law(n, [v.mean() for v in ys])
  boots = bootstrap_fits(n, ys, num_boot=num_boot, seed=seed)
  out = {"a": fit.a, "alpha": fit.alpha, "e": fit.e}
  for name in ("a", "alpha", "e"):
    out[f"{name}_lo"], out[f"{name}_hi"] = percentile_ci(
        [getattr(f, name) for f in boots], level)
  return out


def crossover(fit1: PowerLawFit, fit2: PowerLawFit, lo: float, hi: float,
              *, grid: int = 512) -> float | None:
  """The smallest scale in `[lo, hi]` where the two laws cross (their
  difference changes sign), or None.

  Searched on a log grid, then refined by Brent's method on the bracket.
  """
  if not 0 < lo < hi:
    raise ValueError(f"need 0 < lo < hi; got lo={lo}, hi={hi}")

  def diff(log_n):
    n = np.exp(log_n)
    return power_law(n, *fit1[:3]) - power_law(n, *fit2[:3])

  xs = np.linspace(np.log(lo), np.log(hi), grid)
  d = diff(xs)
  sign_change = np.nonzero(np.sign(d[:-1]) * np.sign(d[1:]) < 0)[0]
  zeros = np.nonzero(d == 0)[0]
  if len(sign_change) == 0:
    return float(np.exp(xs[zeros[0]])) if len(zeros) else None
  k = int(sign_change[0])
  if len(zeros) and zeros[0] <= k:
    return float(np.exp(xs[zeros[0]]))
  return float(np.exp(optimize.brentq(diff, xs[k], xs[k + 1])))


def crossover_with_ci(n: Sequence[float], y1_by_seed, y2_by_seed, *,
                      lo: float | None = None, hi: float | None = None,
                      num_boot: int = 1000, level: float = 0.95,
                      seed: int = 0) -> dict[str, float]:
  """Crossover of recipe 1 and 2 over the scales `n`, with a bootstrap CI.

  Both recipes are fitted on their seed means; each resample refits both
  and locates their crossover in `[lo, hi]` (default: the measured range).

  Returns:
    `{"crossover"` (NaN if none), `"lo"`, `"hi"` (CI over the resamples
    that cross; NaN if none), `"p_cross"` (fraction of resamples with a
    crossover: a CI that excludes "no crossover" needs p_cross >=
    `level`), `"small_winner"` (1 or 2: lower loss at `lo`)}.
  """
  n = np.asarray(n, np.float64)
  lo = float(n.min()) if lo is None else lo
  hi = float(n.max()) if hi is None else hi
  y1, y2 = _as_seed_lists(y1_by_seed), _as_seed_lists(y2_by_seed)
  f1 = fit_power_law(n, [v.mean() for v in y1])
  f2 = fit_power_law(n, [v.mean() for v in y2])
  point = crossover(f1, f2, lo, hi)
  b1 = bootstrap_fits(n, y1, num_boot=num_boot, seed=seed)
  b2 = bootstrap_fits(n, y2, num_boot=num_boot, seed=seed + 1)
  points = [crossover(a, b, lo, hi) for a, b in zip(b1, b2)]
  hits = [p for p in points if p is not None]
  ci = percentile_ci(hits, level) if hits else (float("nan"),) * 2
  small = 1 if power_law(lo, *f1[:3]) <= power_law(lo, *f2[:3]) else 2
  return {"crossover": float("nan") if point is None else point,
          "lo": ci[0], "hi": ci[1], "p_cross": len(hits) / len(points),
          "small_winner": float(small)}

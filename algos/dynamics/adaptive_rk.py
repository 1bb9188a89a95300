"""Adaptive Dormand-Prince 5(4) that returns the solver's internal estimates.

Written for RegNeuralDE (Pal, Ma, Shah, Rackauckas, "Opening the Blackbox:
Accelerating Neural Differential Equations by Regularizing Internal Solver
Heuristics", ICML 2021, arXiv:2105.03918; official Julia code
https://github.com/avik-pal/RegNeuralDE.jl), which regularises a neural ODE
with the local error estimate and the stiffness estimate that the adaptive
solver computes anyway, differentiated discretise-then-optimise.

Why not diffrax: `diffrax.diffeqsolve` computes `y_error` inside its loop
(`_integrate.py`, `body_fun_aux`) but only hands the step controller a
scalar and keeps neither it nor the stages; its `stats` are step counts.
Getting per-step error and stiffness estimates out would mean a wrapper
solver smuggling accumulators through the state and a controller norm that
ignores them. This module is the small, explicit alternative:

* Dormand-Prince 5(4) with FSAL (7 stages, 6 new evaluations per attempted
  step), the tableau diffrax's `Dopri5` uses;
* diffrax's PID controller, rule (4) of its `pid.py` comments: scaled error
  `rms(err / (atol + rtol * max(|y0|, |y1|)))`, accept if < 1, factor
  `safety * (1/e_n)^(b1/5) * (1/e_{n-1})^(b2/5)` clipped to
  `[factormin, factormax]` (to `safety` after a rejection), with
  `b1 = pcoeff + icoeff`, `b2 = -pcoeff`; the step size carries no
  gradient (as in diffrax); the last step is clipped to `t1`;
* per accepted step j: `E_j` = the scaled error norm (OrdinaryDiffEq's
  `EEst`), `h_j`, and Hairer's stiffness estimate
  `rho_j = ||k7 - k6|| / ||y7 - y6||` (stage 6 and 7 both sit at t + h;
  OrdinaryDiffEq's `eigen_est`), accumulated as sums/maxima;
* two loops: `differentiable=False` is a plain `lax.while_loop` (prediction:
  cost proportional to the steps taken); `differentiable=True` is a
  reverse-differentiable bounded loop: a `lax.scan` over chunks of
  `chunk` attempted steps, each chunk skipped by `lax.cond` once the solve
  is done and every step inside masked by accept/reject/done, so training
  also costs about the steps taken (rounded up to a chunk) while the
  gradient flows through every accepted step (discretise-then-optimise).

The whole batch is one ODE state with one step size, as in the official
code (a `[features, batch]` matrix in OrdinaryDiffEq), so NFE is per batch.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

# Dormand-Prince 5(4) (Shampine's tableau, as diffrax's Dopri5).
_C = np.array([1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0])
_A = (
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
    (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
)
_B = np.array([35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84,
               0.0])
_B_ERR = _B - np.array([1951 / 21600, 0.0, 22642 / 50085, 451 / 720,
                        -12231 / 42400, 649 / 6300, 1 / 60])
ERROR_ORDER = 5.0          # embedded order 4, plus one (diffrax's convention)
# |z| on the negative real axis where DP5's stability region ends
# (OrdinaryDiffEq's alg_stability_size(DP5())).
STABILITY_SIZE = 3.3066

VectorField = Callable[[jax.Array, jax.Array], jax.Array]   # f(t, y)


class Tolerances(NamedTuple):
  """Controller settings (floats or traced scalars)."""
  rtol: float = 1e-5
  atol: float = 1e-5
  pcoeff: float = 0.0       # 0, 1: an I controller; PI e.g. 0.4, 0.3
  icoeff: float = 1.0
  safety: float = 0.9
  factormin: float = 0.2
  factormax: float = 10.0


class SolveStats(NamedTuple):
  """What the solver measured, all scalars.

  Attributes:
    nfe: vector-field evaluations (1 + 6 per attempted step, + 2 for the
      initial step size when it is chosen automatically).
    accepted, rejected: step counts.
    error_sum: sum over accepted steps of `E_j * |h_j|` (ERNODE's R_E).
    error_count: accepted steps (the official code averages over them).
    stiff_sum, stiff_max: sum / max over accepted steps of
      `rho_j / STABILITY_SIZE` (SRNODE's R_S; the official code takes the
      max).
    finished: the solve reached t1 within `max_steps`.
  """
  nfe: jax.Array
  accepted: jax.Array
  rejected: jax.Array
  error_sum: jax.Array
  error_count: jax.Array
  stiff_sum: jax.Array
  stiff_max: jax.Array
  finished: jax.Array


def _rms(x: jax.Array) -> jax.Array:
  """Root mean square; its gradient stays finite at 0."""
  return jnp.sqrt(jnp.maximum(jnp.mean(jnp.square(x)), 1e-30))


def dopri5_step(f: VectorField, t: jax.Array, y: jax.Array, h: jax.Array,
                k1: jax.Array):
  """One Dormand-Prince 5(4) step of size `h` from `(t, y)`, `k1 = f(t, y)`.

  Returns:
    `(y1, y_error, k7, rho)`: the 5th-order solution, the embedded error
    `y5 - y4`, `f(t + h, y1)` (the next step's k1, FSAL) and the stiffness
    estimate `||k7 - k6|| / ||y1 - y6||`. Same shape as `y` except the
    scalar `rho`.
  """
  ks = [k1]
  stage = y
  for i, row in enumerate(_A):
    stage = y + h * sum(a * k for a, k in zip(row, ks) if a != 0.0)
    ks.append(f(t + _C[i] * h, stage))
  y6 = y + h * sum(a * k for a, k in zip(_A[4], ks[:5]))  # stage 6 state
  y1 = stage                        # row 6 of A is b: stage 7 is y1 (FSAL)
  y_error = h * sum(e * k for e, k in zip(_B_ERR, ks) if e != 0.0)
  rho = _rms(ks[6] - ks[5]) / _rms(y1 - y6)
  return y1, y_error, ks[6], rho


def initial_step(f: VectorField, t0, y0, f0, tol: Tolerances) -> jax.Array:
  """Hairer, Norsett & Wanner (I, II.4) starting step; 1 extra evaluation
  besides `f0` (no gradient, like every step size here)."""
  y0, f0 = jax.lax.stop_gradient(y0), jax.lax.stop_gradient(f0)
  scale = tol.atol + jnp.abs(y0) * tol.rtol
  d0, d1 = _rms(y0 / scale), _rms(f0 / scale)
  h0 = jnp.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / d1)
  f1 = jax.lax.stop_gradient(f(t0 + h0, y0 + h0 * f0))
  d2 = _rms((f1 - f0) / scale) / h0
  h1 = jnp.where(jnp.maximum(d1, d2) <= 1e-15, jnp.maximum(1e-6, h0 * 1e-3),
                 (0.01 / jnp.maximum(d1, d2)) ** (1.0 / ERROR_ORDER))
  return jnp.minimum(100.0 * h0, h1)


class _State(NamedTuple):
  t: jax.Array
  y: jax.Array
  k1: jax.Array
  h: jax.Array
  prev_inv_err: jax.Array
  steps: jax.Array
  stats: SolveStats


def _attempt(f: VectorField, t1, tol: Tolerances, s: _State) -> _State:
  """One attempted step with accept/reject masking."""
  h = s.h
  y1, y_err, k7, rho = dopri5_step(f, s.t, s.y, h, s.k1)
  scale = tol.atol + tol.rtol * jnp.maximum(jnp.abs(s.y), jnp.abs(y1))
  err = _rms(y_err / scale)
  bad = ~jnp.isfinite(err) | ~jnp.all(jnp.isfinite(y1))
  err = jnp.where(bad, jnp.inf, err)
  accept = err < 1.0
  inv_err = jax.lax.stop_gradient(1.0 / err)
  b1 = (tol.pcoeff + tol.icoeff) / ERROR_ORDER
  b2 = -tol.pcoeff / ERROR_ORDER
  factor = tol.safety * inv_err ** b1 * s.prev_inv_err ** b2
  factor = jnp.clip(factor, jnp.where(accept, 1.0, tol.factormin),
                    jnp.where(accept, tol.factormax, tol.safety))
  factor = jnp.where(jnp.isfinite(factor), factor, tol.factormin)
  t_next = jnp.where(accept, s.t + h, s.t)
  h_next = jax.lax.stop_gradient(h * factor)
  # Land exactly on t1 (diffrax clips within 100 ulp; a rejected step that
  # would overshoot restarts from half the remaining interval).
  end = t_next + h_next
  clip = end >= t1 - 100 * jnp.finfo(h.dtype).eps * jnp.maximum(
      jnp.abs(t1), 1.0)
  h_next = jnp.where(clip, jnp.where(accept, t1 - t_next,
                                     0.5 * (t1 - t_next)), h_next)
  inv_err = jnp.where((inv_err == 0) | jnp.isinf(inv_err), 1.0, inv_err)
  st = s.stats
  acc = accept.astype(jnp.int32)
  stiff = jnp.where(jnp.isfinite(rho), rho, 0.0) / STABILITY_SIZE
  keep = lambda new, old: jnp.where(accept, new, old)
  stats = SolveStats(
      nfe=st.nfe + 6, accepted=st.accepted + acc,
      rejected=st.rejected + 1 - acc,
      error_sum=st.error_sum + keep(jnp.where(bad, 0.0, err) * jnp.abs(h),
                                    0.0),
      error_count=st.error_count + acc,
      stiff_sum=st.stiff_sum + keep(stiff, 0.0),
      stiff_max=keep(jnp.maximum(st.stiff_max, stiff), st.stiff_max),
      finished=st.finished)
  return _State(t=t_next, y=keep(y1, s.y), k1=keep(k7, s.k1), h=h_next,
                prev_inv_err=keep(inv_err, s.prev_inv_err),
                steps=s.steps + 1, stats=stats)


def _masked(active: jax.Array, new, old):
  return jax.tree.map(lambda n, o: jnp.where(active, n, o), new, old)


def solve(f: VectorField, y0: jax.Array, t0, t1, tol: Tolerances = Tolerances(),
          *, dt0: float | jax.Array | None = None, max_steps: int = 256,
          differentiable: bool = True, chunk: int = 8, remat: bool = False
          ) -> tuple[jax.Array, SolveStats]:
  """Solves `dy/dt = f(t, y)` from `y0` [...] at `t0` to `t1` (t1 > t0).

  Args:
    f: the vector field `f(t, y) -> dy/dt` (same shape as y).
    y0: the initial state, any shape (a whole batch `[b, d]` is one ODE).
    t0, t1: scalars, the interval (may be traced).
    tol: tolerances and controller coefficients.
    dt0: the first step size; None picks one (Hairer's rule, 1 evaluation).
    max_steps: most attempted steps (a solve that needs more stops there
      with `stats.finished = False`).
    differentiable: True for the reverse-differentiable bounded loop
      (training), False for a `lax.while_loop` (prediction).
    chunk: attempted steps per skippable block of the bounded loop.
    remat: recompute each attempted step in the backward pass instead of
      keeping its stages (`jax.checkpoint`): memory of the bounded loop
      drops to about the carried state per step, for one more forward.

  Returns:
    `(y(t1) [...], SolveStats)`.
  """
  t0 = jnp.asarray(t0, y0.dtype)
  t1 = jnp.asarray(t1, y0.dtype)
  k1 = f(t0, y0)
  nfe = 1
  if dt0 is None:
    h = initial_step(f, t0, y0, k1, tol)
    nfe += 1
  else:
    h = jnp.asarray(dt0, y0.dtype)
  h = jnp.minimum(h, t1 - t0)
  zero = jnp.zeros((), y0.dtype)
  izero = jnp.zeros((), jnp.int32)
  stats = SolveStats(izero + nfe, izero, izero, zero, izero, zero, zero,
                     jnp.zeros((), bool))
  state = _State(t0, y0, k1, jax.lax.stop_gradient(h), jnp.ones((),
                 y0.dtype), izero, stats)
  done = lambda s: s.t >= t1

  if not differentiable:
    state = jax.lax.while_loop(
        lambda s: ~done(s) & (s.steps < max_steps),
        lambda s: _attempt(f, t1, tol, s), state)
  else:
    attempt = lambda s: _attempt(f, t1, tol, s)
    if remat:
      attempt = jax.checkpoint(attempt)

    def inner(s, _):
      return _masked(~done(s), attempt(s), s), None

    def outer(s, _):
      return jax.lax.cond(done(s), lambda s: s,
                          lambda s: jax.lax.scan(inner, s, None,
                                                 length=chunk)[0], s), None

    state, _ = jax.lax.scan(outer, state, None,
                            length=-(-max_steps // chunk))
  return state.y, state.stats._replace(finished=done(state))


def solve_at(f: VectorField, y0: jax.Array, ts: jax.Array,
             tol: Tolerances = Tolerances(), *, max_steps: int = 256,
             differentiable: bool = True, chunk: int = 8
             ) -> tuple[jax.Array, SolveStats]:
  """`y` at every time of `ts` [T] (increasing, `ts[0]` the start).

  Steps land on every `ts[i]` (like OrdinaryDiffEq's `tstops`): each
  segment is its own solve with an automatic first step, and the
  statistics add up over segments.

  Returns:
    `(ys [T, ...], SolveStats summed over the T - 1 segments)`, with
    `stiff_max` the max and `finished` the and over segments.
  """
  def segment(y, t_pair):
    y1, st = solve(f, y, t_pair[0], t_pair[1], tol, max_steps=max_steps,
                   differentiable=differentiable, chunk=chunk)
    return y1, (y1, st)

  pairs = jnp.stack([ts[:-1], ts[1:]], axis=-1)
  _, (ys, st) = jax.lax.scan(segment, y0, pairs)
  total = SolveStats(*(jnp.sum(x) for x in st))._replace(
      stiff_max=jnp.max(st.stiff_max), finished=jnp.all(st.finished))
  return jnp.concatenate([y0[None], ys]), total

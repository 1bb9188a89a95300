"""Sparsity-constrained optimal transport: at most k non-zeros per column.

Paper: Liu, Puigcerver, Blondel, "Sparsity-Constrained Optimal Transport",
ICLR 2023, arXiv:2209.15466. The authors' reference solver is in POT
(`ot/smooth.py`, `SparsityConstrained`, by T. Liu) and is our test oracle.

Problem (columns j are targets; the constraint is per column of the plan):

  min_{T in U(a, b), ||T[:, j]||_0 <= k}  <T, C> + gamma/2 ||T||^2.

It is non-convex in T, but its dual and semi-dual are concave and smooth
enough for L-BFGS (paper Sec. 3-4):

  dual:      max_{f, g} <f, a> + <g, b> - sum_j delta_k(f + g_j - C[:, j])
             delta_k(x) = max_{t >= 0, ||t||_0 <= k} <x, t> - gamma/2 ||t||^2
                        = sum of the k largest max(x, 0)^2 / (2 gamma);
  semi-dual: max_f <f, a> - sum_j b_j max_k(f - C[:, j]; gamma b_j)
             max_k(x; s) = max_{y in simplex, ||y||_0 <= k} <x, y> - s/2 ||y||^2,
             attained at the top-k sparse simplex projection of x / s
             (Kyrillidis et al., ICML 2013).

The plan is the gradient of the conjugates at the optimal potentials: in the
semi-dual its column sums are exactly b, in the dual both marginals are
approximate. k = 1 recovers unregularised OT (each column is one atom), and
k >= n quadratically-regularised OT (Blondel et al. 2018).

What comes from ott-jax: the `Geometry` (cost matrix, `scale_cost`), the
input convention (`a` rows, `b` columns). What is new here (ott-jax 0.6 has no
cardinality-constrained solver): an exact top-k selection per column without a
sort (`_column_top_k`, one fused pass over the cost), the two objectives
evaluated on the k selected entries of each column, an L-BFGS loop under
`lax.while_loop` (`_lbfgs_minimise`), and implicit differentiation of the
optimal potentials with `lax.custom_root` (Hessian-vector products +
conjugate gradient), so gradients w.r.t. the cost matrix, the points behind
it, `a`, `b` and `gamma` are those of the solution, not of the unrolled
iterations. `k` is static (it fixes the selection's shape); `gamma`, `a`,
`b`, `C` are traced, so sweeps over them never recompile. Everything vmaps
over a batch of problems. Speed and its profile:
experiments/sparse_ot/README.md.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
from ott.geometry import geometry

Formulation = Literal["semi_dual", "dual"]


class SparseOTOutput(NamedTuple):
  """Solution of one sparsity-constrained OT problem.

  Attributes:
    plan: `[n, m]` transport plan, at most k non-zeros per column.
    f: `[n]` row potentials.
    g: `[m]` column potentials (dual) or zeros (semi-dual).
    dual_value: scalar, the (semi-)dual objective at (f, g).
    primal_cost: scalar, <plan, C> + gamma/2 ||plan||^2.
    transport_cost: scalar, <plan, C>.
    grad_norm: scalar, norm of the objective's gradient at the end.
    num_iters: int scalar, L-BFGS iterations taken.
  """
  plan: jax.Array
  f: jax.Array
  g: jax.Array
  dual_value: jax.Array
  primal_cost: jax.Array
  transport_cost: jax.Array
  grad_norm: jax.Array
  num_iters: jax.Array


def _project_sorted(x: jax.Array) -> jax.Array:
  """Simplex projection of each row of `x` `[..., k]`, sorted descending.

  The sort-based rule (Held et al. 1974): theta = (sum of the rho largest
  - 1) / rho for the largest rho with x_rho > theta; y = max(x - theta, 0).
  """
  k = x.shape[-1]
  cssv = jnp.cumsum(x, axis=-1) - 1.0
  ranks = jnp.arange(1, k + 1, dtype=x.dtype)
  support = x - cssv / ranks > 0                       # a prefix of True
  rho = jnp.sum(support, axis=-1, keepdims=True)       # >= 1 always
  theta = jnp.take_along_axis(cssv, rho - 1, axis=-1) / rho.astype(x.dtype)
  return jnp.maximum(x - theta, 0.0)


def sparse_simplex_projection(x: jax.Array, k: int) -> jax.Array:
  """Euclidean projection of each row of `x` onto {y in simplex, ||y||_0 <= k}.

  The optimum keeps the k largest entries (Kyrillidis et al. 2013, Prop. 1)
  and projects them onto the simplex with the sort-based rule. This dense
  form (`lax.top_k` on the whole row) is the reference; the solver uses the
  same rule on the entries `_column_top_k` selects.

  Args:
    x: `[..., n]` values.
    k: static number of entries allowed to be non-zero (clipped to n).

  Returns:
    `[..., n]` projections; rows sum to 1 with at most k positive entries.
  """
  k = min(int(k), x.shape[-1])
  top, idx = jax.lax.top_k(x, k)                      # sorted descending
  return jnp.put_along_axis(jnp.zeros_like(x), idx, _project_sorted(top),
                            axis=-1, inplace=False)


def _top_k_small(x: jax.Array, k: int) -> jax.Array:
  """`[r, k]` indices of the k largest entries of each row of `x` `[r, c]`.

  Descending, ties to the lower index. k rounds of max / first index / mask:
  plain reductions, which XLA vectorises in every dtype (on CPU `lax.top_k`
  is a custom call in float32 only; in float64 it is a full comparator
  sort, ~100x slower than a pass over the data at n = 2000).
  """
  c = x.shape[-1]
  iota = jax.lax.broadcasted_iota(jnp.int32, x.shape, x.ndim - 1)
  picked = []
  for _ in range(k):
    top = jnp.max(x, axis=-1, keepdims=True)
    i = jnp.min(jnp.where(x == top, iota, c - 1), axis=-1, keepdims=True)
    picked.append(i)
    x = jnp.where(iota == i, -jnp.inf, x)
  return jnp.concatenate(picked, axis=-1)


def _block_size(n: int, k: int) -> int:
  """Rows per block of `_column_top_k`; 0 = no blocks (select on whole rows).

  Cost per column: one max over n rows, then k-largest selections over n / B
  block maxima and k * B candidates: B ~ sqrt(n / k) balances the two. Small
  problems and large k (k rounds of `_top_k_small` each) use `lax.top_k`.
  """
  block = max(8, int(round((n / k) ** 0.5)))
  if k > 16 or n < 4 * k * block:
    return 0
  return block


def _column_top_k(f: jax.Array, cost: jax.Array, k: int) -> jax.Array:
  """`[m, k]` rows i of the k largest f_i - C_ij of each column j, descending.

  This is the support of the semi-dual's and the dual's plan columns (adding
  g_j or dividing by gamma b_j > 0 keeps the order within a column). Exact,
  without a sort of the n entries: rows are grouped into nb strided blocks
  {r, r + nb, r + 2 nb, ...}; the k largest entries of a column lie in the
  k blocks with the largest maxima (a block holding one of them has a
  maximum >= the k-th largest, any other block a maximum <= it), so one
  fused pass over `cost` computes the `[nb, m]` block maxima and only those
  k blocks' k * B candidates are gathered and compared. No gradient.

  Args:
    f: `[n]` row potentials.
    cost: `[n, m]` cost matrix.
    k: static, 1 <= k <= n.
  """
  n, m = cost.shape
  f, cost = jax.lax.stop_gradient(f), jax.lax.stop_gradient(cost)
  block = _block_size(n, k)
  if not block:
    return jax.lax.top_k((f[:, None] - cost).T, k)[1]
  nb = -(-n // block)
  block = -(-n // nb)                       # every block holds row r < nb
  neg_inf = jnp.asarray(-jnp.inf, cost.dtype)
  # Block maxima as B slabs of nb rows, max'ed elementwise: one loop fusion
  # over `cost` (a reshape + reduce is several times slower on XLA:CPU).
  bmax = None
  for t in range(block):
    lo, hi = t * nb, min((t + 1) * nb, n)
    slab = f[lo:hi, None] - cost[lo:hi]
    if hi - lo < nb:
      slab = jnp.pad(slab, ((0, nb - (hi - lo)), (0, 0)),
                     constant_values=neg_inf)
    bmax = slab if bmax is None else jnp.maximum(bmax, slab)
  blocks = _top_k_small(bmax.T, k)                     # [m, k]
  rows = (blocks[:, :, None] + nb * jnp.arange(block)).reshape(m, k * block)
  valid = rows < n
  rows = jnp.minimum(rows, n - 1)
  cand = f[rows] - cost[rows, jnp.arange(m)[:, None]]
  pick = _top_k_small(jnp.where(valid, cand, neg_inf), k)
  return jnp.take_along_axis(rows, pick, axis=1)


def _top_k_entries(f, cost, k):
  """`(rows [m, k], z [m, k])`: each column's k largest z_ij = f_i - C_ij.

  z is differentiable in f and cost (a gather), the selection is not.
  """
  rows = _column_top_k(f, cost, k)
  return rows, f[rows] - cost[rows, jnp.arange(cost.shape[1])[:, None]]


def _scatter_columns(rows, values, shape):
  """`[n, m]` plan with `values` `[m, k]` at (rows[j], j), zeros elsewhere."""
  cols = jnp.broadcast_to(jnp.arange(shape[1])[:, None], rows.shape)
  return jnp.zeros(shape, values.dtype).at[rows, cols].set(values)


def _semi_dual_columns(f, cost, b, gamma, k):
  """`(rows, z, y)`, each `[m, k]`: column j of the plan is b_j y_j at rows_j.

  y_j is the top-k simplex projection of (f - C_j) / (gamma b_j), computed
  on the k selected entries only.
  """
  rows, z = _top_k_entries(f, cost, k)
  y = _project_sorted(z / (gamma * b)[:, None])
  return rows, z, y


def _semi_dual_plan(f, cost, b, gamma, k):
  """Plan `[n, m]` from row potentials: column j = b_j proj((f - C_j) / s_j).

  s_j = gamma b_j.
  """
  rows, _, y = _semi_dual_columns(f, cost, b, gamma, k)
  return _scatter_columns(rows, y * b[:, None], cost.shape)


def _dual_plan(f, g, cost, gamma, k):
  """Plan `[n, m]` from both potentials: each column's k largest max(x, 0),
  divided by gamma (x = f + g_j - C_j)."""
  rows, z = _top_k_entries(f, cost, k)
  return _scatter_columns(rows, jnp.maximum(z + g[:, None], 0.0) / gamma,
                          cost.shape)


def semi_dual_objective(f, cost, a, b, gamma, k):
  """Semi-dual objective (to maximise) at row potentials `f` `[n]`."""
  _, z, y = _semi_dual_columns(f, cost, b, gamma, k)
  # b_j * max_k(z_j) = b_j (<z_j, y_j> - gamma b_j / 2 ||y_j||^2).
  inner = jnp.sum(z * y, -1) - 0.5 * gamma * b * jnp.sum(y**2, -1)
  return jnp.dot(f, a) - jnp.dot(b, inner)


def dual_objective(fg, cost, a, b, gamma, k):
  """Dual objective (to maximise) at `fg` = concat(f [n], g [m])."""
  n = a.shape[0]
  f, g = fg[:n], fg[n:]
  _, z = _top_k_entries(f, cost, k)
  pos = jnp.maximum(z + g[:, None], 0.0)               # [m, k]
  return jnp.dot(f, a) + jnp.dot(g, b) - jnp.sum(pos**2) / (2.0 * gamma)


class _Iterate(NamedTuple):
  """State of `_lbfgs_minimise`: the iterate and the last `memory` pairs."""
  x: jax.Array            # [d]
  value: jax.Array        # scalar
  grad: jax.Array         # [d]
  s: jax.Array            # [memory, d] steps, oldest first
  y: jax.Array            # [memory, d] gradient changes
  rho: jax.Array          # [memory] 1 / <s, y>; 0 marks an empty slot
  it: jax.Array           # int scalar
  done: jax.Array         # bool scalar


def _direction(state: _Iterate) -> jax.Array:
  """Quasi-Newton descent direction -H grad (two-loop recursion)."""
  q, alphas = state.grad, []
  for i in reversed(range(state.rho.shape[0])):
    alpha = state.rho[i] * jnp.vdot(state.s[i], q)
    q = q - alpha * state.y[i]
    alphas.append(alpha)
  sy = jnp.vdot(state.s[-1], state.y[-1])
  yy = jnp.vdot(state.y[-1], state.y[-1])
  # H0 = <s, y> / <y, y> I from the newest pair; before any pair, a first
  # step of unit length.
  scale = jnp.where(state.rho[-1] > 0, sy / jnp.maximum(yy, 1e-30),
                    1.0 / jnp.maximum(jnp.linalg.norm(q), 1e-30))
  r = scale * q
  for i, alpha in zip(range(state.rho.shape[0]), reversed(alphas)):
    beta = state.rho[i] * jnp.vdot(state.y[i], r)
    r = r + (alpha - beta) * state.s[i]
  return -r


def _lbfgs_minimise(value_and_grad, x0, max_iter, tol, ftol, recenter,
                    memory=10, max_backtracks=30, armijo=1e-4):
  """Minimises a convex `value_and_grad` with L-BFGS and Armijo backtracking.

  One evaluation (value and gradient together) per iteration when the unit
  step is accepted, as it is near the optimum; the step is halved until the
  Armijo condition holds. A pair (s, y) enters the memory only when
  <s, y> > 0 is well above round-off, so the inverse-Hessian model stays
  positive definite at kinks of a non-smooth objective. Stops when the
  gradient norm is <= `tol`, when an iteration lowers the value by less
  than `ftol` * max(|value|, 1) (scipy's L-BFGS-B rule; the end at a kink,
  where the gradient does not vanish), when no step decreases the value, or
  after `max_iter` iterations. `recenter(x)` moves x along the objective's
  null direction back to a fixed gauge after every step (potentials that
  drift to 1e7 lose all precision in f_i - C_ij).
  """
  d = x0.shape[0]
  value0, grad0 = value_and_grad(x0)
  zeros = jnp.zeros((memory, d), x0.dtype)
  init = _Iterate(x0, value0, grad0, zeros, zeros,
                  jnp.zeros((memory,), x0.dtype), jnp.asarray(0),
                  jnp.linalg.norm(grad0) <= tol)

  def body(st: _Iterate) -> _Iterate:
    direction = _direction(st)
    slope = jnp.vdot(st.grad, direction)
    # Not a descent direction (round-off in the model): steepest descent.
    steep = slope >= 0
    direction = jnp.where(steep, -st.grad / jnp.maximum(
        jnp.linalg.norm(st.grad), 1e-30), direction)
    slope = jnp.where(steep, -jnp.linalg.norm(st.grad), slope)

    def trial(t):
      x = recenter(st.x + t * direction)
      return (x,) + tuple(value_and_grad(x))

    # Accept on Armijo, or (Hager & Zhang 2005, approximate Wolfe) where the
    # value change is within round-off: no rise beyond a few ulps and the
    # slope at the trial point not strongly positive. In float32 the Armijo
    # test alone fails near the optimum long before the gradient is small.
    noise = 8 * jnp.finfo(x0.dtype).eps * jnp.abs(st.value)
    decreased = lambda t, value: value <= st.value + armijo * t * slope
    acceptable = lambda t, value, grad: decreased(t, value) | (
        (value <= st.value + noise)
        & (jnp.vdot(grad, direction) <= -(1 - 2 * armijo) * slope))

    def backtrack(c):
      t, _, _, _, n = c
      return (t / 2,) + trial(t / 2) + (n + 1,)

    # `~acceptable` so that a NaN value backtracks too.
    not_acceptable = lambda c: ~acceptable(c[0], c[2], c[3]) & (
        c[4] < max_backtracks)
    one = jnp.asarray(1.0, x0.dtype)
    t, x, value, grad, _ = jax.lax.while_loop(
        not_acceptable, backtrack, (one,) + trial(one) + (jnp.asarray(0),))
    accepted = acceptable(t, value, grad)
    s, y = x - st.x, grad - st.grad
    sy = jnp.vdot(s, y)
    keep = accepted & (sy > 1e-10 * jnp.vdot(y, y))
    # No acceptable step along the model's direction: forget the pairs and
    # retry along the gradient; stop if that fails too.
    fresh = st.rho[-1] == 0
    reset = ~accepted & ~fresh
    roll = lambda buf, new: jnp.where(
        keep, jnp.concatenate([buf[1:], new[None]]),
        jnp.where(reset, jnp.zeros_like(buf), buf))
    new = _Iterate(
        x=jnp.where(accepted, x, st.x),
        value=jnp.where(accepted, value, st.value),
        grad=jnp.where(accepted, grad, st.grad),
        s=roll(st.s, s), y=roll(st.y, y),
        rho=roll(st.rho, 1.0 / jnp.where(keep, sy, 1.0)),
        it=st.it + 1, done=st.done)
    # The ftol rule applies to Armijo steps only (an approximate step's value
    # change is round-off).
    small = decreased(t, value) & (st.value - new.value < ftol * jnp.maximum(
        jnp.maximum(jnp.abs(st.value), jnp.abs(new.value)), 1.0))
    done = (~accepted & fresh) | small | (jnp.linalg.norm(new.grad) <= tol)
    return new._replace(done=done)

  cond = lambda st: (~st.done) & (st.it < max_iter)
  final = jax.lax.while_loop(cond, body, init)
  return final.x, final.it


def _cg(matvec, y, iters):
  """Conjugate gradient for a symmetric PSD `matvec`, fixed iterations."""
  def body(_, carry):
    x, r, p, rs = carry
    ap = matvec(p)
    alpha = rs / jnp.maximum(jnp.vdot(p, ap), 1e-30)
    x, r = x + alpha * p, r - alpha * ap
    rs_new = jnp.vdot(r, r)
    p = r + (rs_new / jnp.maximum(rs, 1e-30)) * p
    return x, r, p, rs_new
  init = (jnp.zeros_like(y), y, y, jnp.vdot(y, y))
  return jax.lax.fori_loop(0, iters, body, init)[0]


def _cg_tangent_solve(ridge, maxiter):
  """Solves H v = y for the (PSD, possibly singular) Hessian of -objective."""
  def tangent_solve(matvec, y):
    # The objectives are invariant to shifts of the potentials, so H has a
    # null space; a small ridge makes CG well posed.
    op = lambda v: matvec(v) + ridge * v
    # custom_linear_solve makes the solve transposable (reverse mode).
    return jax.lax.custom_linear_solve(
        op, y, lambda mv, rhs: _cg(mv, rhs, maxiter), symmetric=True)
  return tangent_solve


def solve(geom: geometry.Geometry,
          k: int,
          gamma: float | jax.Array = 1.0,
          a: jax.Array | None = None,
          b: jax.Array | None = None,
          formulation: Formulation = "semi_dual",
          max_iter: int = 500,
          tol: float = 1e-6,
          ftol: float = 1e-9,
          implicit_ridge: float = 1e-6,
          implicit_cg_iters: int = 200) -> SparseOTOutput:
  """Solves sparsity-constrained OT between `a` and `b` on `geom`.

  Args:
    geom: an ott-jax geometry with an `[n, m]` cost matrix.
    k: static max number of non-zeros per column (target) of the plan, >= 1.
    gamma: strength of the squared-L2 regulariser (> 0), traced.
    a: `[n]` row weights (default uniform); must sum to 1.
    b: `[m]` column weights (default uniform); must sum to 1.
    formulation: "semi_dual" (column marginals exact) or "dual".
    max_iter: maximum L-BFGS iterations (static).
    tol: stop when the gradient norm is below this (static).
    ftol: stop when an iteration improves the objective by less than ftol *
      max(|objective|, 1) (static): at a binding k the optimum is a kink
      where the gradient norm stays finite (README).
    implicit_ridge: ridge added to the Hessian in the implicit backward pass.
    implicit_cg_iters: conjugate-gradient iterations of the backward pass.

  Returns:
    A `SparseOTOutput`.

  Precision: when the constraint binds (small k) the objectives are
  non-smooth and the solver ends on a kink (the gradient norm stays finite;
  the `ftol` rule stops it). float32 reaches POT's optimum on small problems;
  the studies and the benchmark use a float64 `geom` (under
  `jax.enable_x64`); see experiments/sparse_ot/README.md.
  """
  if formulation not in ("semi_dual", "dual"):
    raise ValueError(f"formulation={formulation!r}; allowed: 'semi_dual', "
                     f"'dual'")
  if not isinstance(k, int) or k < 1:
    raise ValueError(f"k={k!r} must be a Python int >= 1 (it is static: it "
                     f"fixes the shape of the top-k selection)")
  cost = geom.cost_matrix
  n, m = cost.shape
  a = jnp.full((n,), 1.0 / n, cost.dtype) if a is None else jnp.asarray(a)
  b = jnp.full((m,), 1.0 / m, cost.dtype) if b is None else jnp.asarray(b)
  if a.shape != (n,) or b.shape != (m,):
    raise ValueError(f"a {a.shape} and b {b.shape} must have shapes ({n},) "
                     f"and ({m},) to match the cost matrix {cost.shape}")
  gamma = jnp.asarray(gamma, cost.dtype)

  if formulation == "semi_dual":
    objective = lambda f: semi_dual_objective(f, cost, a, b, gamma, k)
    x0 = jnp.zeros((n,), cost.dtype)
    recenter = lambda f: f - jnp.mean(f)             # f + t is as good as f
  else:
    objective = lambda fg: dual_objective(fg, cost, a, b, gamma, k)
    x0 = jnp.zeros((n + m,), cost.dtype)
    # (f + t, g - t) is as good as (f, g).
    recenter = lambda fg: fg - jnp.mean(fg[:n]) * jnp.concatenate(
        [jnp.ones((n,), fg.dtype), -jnp.ones((m,), fg.dtype)])
  grad_neg = jax.grad(lambda x: -objective(x))

  def forward(_, guess):
    x, it = _lbfgs_minimise(jax.value_and_grad(lambda x: -objective(x)),
                            guess, max_iter, tol, ftol, recenter)
    # custom_root's JVP wants float aux outputs; cast back below.
    return x, it.astype(guess.dtype)

  # Implicit function theorem on grad(objective)(x*) = 0: gradients flow to
  # cost, a, b and gamma (closed over) through a CG solve with the Hessian.
  x, num_iters = jax.lax.custom_root(
      grad_neg, x0, forward,
      _cg_tangent_solve(implicit_ridge, implicit_cg_iters), has_aux=True)
  num_iters = jax.lax.stop_gradient(num_iters).astype(jnp.int32)
  grad_norm = jnp.linalg.norm(jax.lax.stop_gradient(grad_neg(x)))
  if formulation == "semi_dual":
    f, g = x, jnp.zeros((m,), cost.dtype)
    plan = _semi_dual_plan(f, cost, b, gamma, k)
  else:
    f, g = x[:n], x[n:]
    plan = _dual_plan(f, g, cost, gamma, k)
  transport = jnp.sum(plan * cost)
  return SparseOTOutput(
      plan=plan, f=f, g=g, dual_value=objective(x),
      primal_cost=transport + 0.5 * gamma * jnp.sum(plan**2),
      transport_cost=transport, grad_norm=grad_norm, num_iters=num_iters)


def solve_cost_matrix(cost: jax.Array, k: int, gamma: float | jax.Array = 1.0,
                      **kwargs) -> SparseOTOutput:
  """`solve` on a raw `[n, m]` cost matrix (wrapped in an ott `Geometry`)."""
  return solve(geometry.Geometry(cost_matrix=cost), k, gamma, **kwargs)

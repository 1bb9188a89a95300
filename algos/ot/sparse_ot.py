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
cardinality-constrained solver): the top-k simplex projection, the two
objectives, an L-BFGS loop (optax) under `lax.while_loop`, and implicit
differentiation of the optimal potentials with `lax.custom_root` (Hessian-
vector products + conjugate gradient), so gradients w.r.t. the cost matrix,
the points behind it, `a`, `b` and `gamma` are those of the solution, not of
the unrolled iterations. `k` is static (it fixes `lax.top_k`'s shape);
`gamma`, `a`, `b`, `C` are traced, so sweeps over them never recompile.
Everything vmaps over a batch of problems.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax
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


def sparse_simplex_projection(x: jax.Array, k: int) -> jax.Array:
  """Euclidean projection of each row of `x` onto {y in simplex, ||y||_0 <= k}.

  The optimum keeps the k largest entries (Kyrillidis et al. 2013, Prop. 1)
  and projects them onto the simplex with the sort-based rule.

  Args:
    x: `[..., n]` values.
    k: static number of entries allowed to be non-zero (clipped to n).

  Returns:
    `[..., n]` projections; rows sum to 1 with at most k positive entries.
  """
  n = x.shape[-1]
  k = min(int(k), n)
  top, idx = jax.lax.top_k(x, k)                      # sorted descending
  cssv = jnp.cumsum(top, axis=-1) - 1.0
  ranks = jnp.arange(1, k + 1, dtype=x.dtype)
  support = top - cssv / ranks > 0                     # a prefix of True
  rho = jnp.sum(support, axis=-1, keepdims=True)       # >= 1 always
  theta = jnp.take_along_axis(cssv, rho - 1, axis=-1) / rho.astype(x.dtype)
  values = jnp.maximum(top - theta, 0.0)
  out = jnp.zeros_like(x)
  # Scatter the k projected values back to their positions along the axis.
  return jnp.put_along_axis(out, idx, values, axis=-1, inplace=False)


def _topk_mask(x: jax.Array, k: int) -> jax.Array:
  """`[..., n]` mask of the k largest entries of each row."""
  n = x.shape[-1]
  k = min(int(k), n)
  _, idx = jax.lax.top_k(x, k)
  return jnp.put_along_axis(jnp.zeros(x.shape, bool), idx, True, axis=-1,
                            inplace=False)


def _semi_dual_plan(f, cost, b, gamma, k):
  """Plan `[n, m]` from row potentials: column j = b_j * proj((f-C_j)/(gamma b_j))."""
  x = (f[:, None] - cost).T / (gamma * b[:, None])     # [m, n]
  return (sparse_simplex_projection(x, k) * b[:, None]).T


def _dual_plan(f, g, cost, gamma, k):
  """Plan `[n, m]` from both potentials: the k largest max(x, 0) / gamma per column."""
  x = (f[:, None] + g[None, :] - cost).T                # [m, n]
  return (jnp.where(_topk_mask(x, k), jnp.maximum(x, 0.0), 0.0) / gamma).T


def semi_dual_objective(f, cost, a, b, gamma, k):
  """Semi-dual objective (to maximise) at row potentials `f` `[n]`."""
  plan = _semi_dual_plan(f, cost, b, gamma, k)
  # b_j * max_k(x_j) = <x_j, t_j> - gamma/2 ||t_j||^2 with t_j = plan column.
  inner = jnp.sum((f[:, None] - cost) * plan) - 0.5 * gamma * jnp.sum(plan**2)
  return jnp.dot(f, a) - inner


def dual_objective(fg, cost, a, b, gamma, k):
  """Dual objective (to maximise) at `fg` = concat(f [n], g [m])."""
  n = a.shape[0]
  f, g = fg[:n], fg[n:]
  x = (f[:, None] + g[None, :] - cost).T                # [m, n]
  pos = jnp.where(_topk_mask(x, k), jnp.maximum(x, 0.0), 0.0)
  return jnp.dot(f, a) + jnp.dot(g, b) - jnp.sum(pos**2) / (2.0 * gamma)


def _lbfgs_maximise(objective, x0, max_iter, tol, recenter, memory_size=10):
  """Maximises a concave `objective` with optax L-BFGS (zoom line search).

  `recenter(x)` moves x along the objective's null direction (a common shift
  of the potentials) back to a fixed gauge after every step: where the
  objective is piecewise linear the line search can take huge steps along
  it, and potentials of size 1e7 lose all precision in `f_i - C_ij`.
  """
  neg = lambda x: -objective(x)
  opt = optax.lbfgs(memory_size=memory_size)
  value_and_grad = optax.value_and_grad_from_state(neg)

  def cond(carry):
    _, _, it, gnorm = carry
    return (it < max_iter) & (gnorm > tol)

  def body(carry):
    x, state, it, _ = carry
    value, grad = value_and_grad(x, state=state)
    updates, state = opt.update(grad, state, x, value=value, grad=grad,
                                value_fn=neg)
    x = recenter(optax.apply_updates(x, updates))
    return x, state, it + 1, optax.tree.norm(grad)

  init = (x0, opt.init(x0), jnp.asarray(0), jnp.asarray(jnp.inf, x0.dtype))
  x, _, it, _ = jax.lax.while_loop(cond, body, init)
  return x, it


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
    implicit_ridge: ridge added to the Hessian in the implicit backward pass.
    implicit_cg_iters: conjugate-gradient iterations of the backward pass.

  Returns:
    A `SparseOTOutput`.

  Precision: when the constraint binds (small k) the objectives are
  non-smooth, and in float32 the L-BFGS line search can evaluate them where
  round-off dominates and end at a bad iterate (40 x 40 clouds, k = 2: value
  -2.04 instead of 0.0606). A float64 `geom` (under `jax.enable_x64`) reaches
  POT's optimum; see experiments/sparse_ot/README.md.
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
    x, it = _lbfgs_maximise(objective, guess, max_iter, tol, recenter)
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

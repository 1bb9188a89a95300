"""MAID: an adaptively inexact first-order method for bilevel optimisation.

Paper: An Adaptively Inexact First-Order Method for Bilevel Optimization
with Application to Hyperparameter Learning, Salehi, Mukherjee, Roberts,
Ehrhardt, SIMODS 2025, arXiv:2308.10098.
Official code (PyTorch): https://github.com/MohammadSadeghSalehi/MAID
(`MAID.py`; problems `Quadratic.py`, `MultiClassRegression.py` with HOAG).

    min_theta f(x*(theta))  s.t.  x*(theta) = argmin_x g(x, theta),

`g` mu-strongly convex in `x`. The hypergradient (implicit function
theorem) is `h = -J H^{-1} grad f(x*)` with `H = d2g/dx2`,
`J = d2g/(dtheta dx)`. MAID computes it inexactly: `x_eps` with
`||x_eps - x*|| <= eps` (`lower_solve`: strongly convex FISTA stopped when
`||grad_x g|| / mu <= eps`), `q` by conjugate gradients to residual `delta`
(`hypergradient`), and bounds the error `||h_eps - h|| <= omega(eps,
delta)` (`error_bound`, the official constants estimated on the fly).
Accuracies shrink (x tau) until `omega / ||h_eps|| <= 1 - eta`, then an
inexact backtracking line search (sufficient decrease of an upper bound of
f) picks the step; a success grows eps, delta (x nu) and the step (x 10/9),
a failure shrinks eps, delta (x tau) and retries.

These are solvers (WORKSPACE invariant 1): host loops of jitted pieces,
not training updates. The upper-level update of MAID is its own line
search, and HOAG's (Pedregosa 2016, the official baseline) its own
step-size rule; neither is an optax optimizer.

Differences from the official code: the lower-level stop is `||grad|| / mu
<= eps` (the official `Quadratic.py` divides by `2 mu`; the logistic
`FISTA` estimates mu = L - 1e-3 by power iteration, we use exp(min theta));
CG iterations are not counted (jax's cg does not return them). Parity of
iterates with the official code was not checked (not run here).

CG: `jax.scipy.sparse.linalg.cg` with `tol=0, atol=delta` (absolute
residual, what MAID's bound needs), matrix-free on Hessian-vector products,
pytree unknowns; lineax is not a dependency of this repo and would add
nothing here (the Hessian is symmetric positive definite).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

PyTree = Any   # the lower-level variable: one array


@dataclasses.dataclass(frozen=True, eq=False)
class Problem:
  """A bilevel problem (hashable by identity: a static jit argument).

  Attributes:
    upper: `f(x) -> scalar`.
    lower: `g(x, theta) -> scalar`, strongly convex in `x`.
    mu: `mu(theta)`, a strong-convexity constant of `g(., theta)`.
    lip: `L(theta)`, a Lipschitz constant of `grad_x g(., theta)`.
    lip_upper: Lipschitz constant of `grad f` (the official `Lg`).
  """
  upper: Callable[[PyTree], jax.Array]
  lower: Callable[[PyTree, jax.Array], jax.Array]
  mu: Callable[[jax.Array], jax.Array]
  lip: Callable[[jax.Array], jax.Array]
  lip_upper: float


def _norm(tree: PyTree) -> jax.Array:
  return jnp.sqrt(sum(jnp.vdot(v, v) for v in jax.tree.leaves(tree)))


@functools.partial(jax.jit, static_argnums=(0, 4))
def lower_solve(problem: Problem, theta: jax.Array, x0: PyTree,
                eps: jax.Array, max_iter: int = 2000
                ) -> tuple[PyTree, jax.Array]:
  """`(x, iterations)`: strongly convex FISTA (the official `FISTA`) from
  `x0` until `||grad_x g(z)|| / mu <= eps` (then `||x - x*|| <= eps`)."""
  mu, lip = problem.mu(theta), problem.lip(theta)
  q = mu / lip
  grad = jax.grad(problem.lower)

  def cond(s):
    return (s["k"] < max_iter) & ~s["done"]

  def body(s):
    t = s["t"]
    t_new = (1 - q * t ** 2 + jnp.sqrt((1 - q * t ** 2) ** 2 + 4 * t ** 2)) / 2
    beta = (t - 1) * (1 - t_new * q) / (t_new * (1 - q))
    z = jax.tree.map(lambda a, b: a + beta * (a - b), s["x"], s["x_old"])
    p = grad(z, theta)
    x_new = jax.tree.map(lambda a, b: a - b / lip, z, p)
    return {"x": x_new, "x_old": s["x"], "t": t_new, "k": s["k"] + 1,
            "done": _norm(p) / mu <= eps}

  init = {"x": x0, "x_old": x0, "t": jnp.zeros(()), "k": jnp.zeros((),
                                                                   jnp.int32),
          "done": _norm(grad(x0, theta)) / mu <= eps}
  out = jax.lax.while_loop(cond, body, init)
  return out["x"], out["k"]


def _hvp(problem, x, theta, v):
  return jax.jvp(lambda y: jax.grad(problem.lower)(y, theta), (x,), (v,))[1]


def _jac_t(problem, x, theta, q):
  """`J q = d/dtheta <grad_x g(x, theta), q>` (shape of theta)."""
  return jax.grad(lambda th: jnp.vdot(jax.grad(problem.lower)(x, th), q))(
      theta)


def _cg(problem, x, theta, rhs, delta, max_iter=2000):
  return jax.scipy.sparse.linalg.cg(
      lambda v: _hvp(problem, x, theta, v), rhs, tol=0.0, atol=delta,
      maxiter=max_iter)[0]


@functools.partial(jax.jit, static_argnums=0)
def hypergradient(problem: Problem, theta: jax.Array, x: PyTree,
                  delta: jax.Array) -> tuple[jax.Array, PyTree]:
  """`(h, q)`: `q ~ H(x)^{-1} grad f(x)` (CG residual <= delta) and the
  inexact hypergradient `h = -J(x) q` at the lower-level iterate `x`."""
  q = _cg(problem, x, theta, jax.grad(problem.upper)(x), delta)
  return -_jac_t(problem, x, theta, q), q


@functools.partial(jax.jit, static_argnums=0)
def _bound_terms(problem, theta, x, h, q, delta, key):
  """The official `bound`'s constants at `x`: `B_x`, and this draw's
  estimates of `L_B`, `L_{A^-1}`, `||grad f(x)||`."""
  grad_f = jax.grad(problem.upper)(x)
  b_x = jnp.max(jnp.abs(jax.grad(lambda y: jnp.vdot(
      _jac_t(problem, y, theta, q), h))(x)))
  perturb = jax.tree.map(lambda v: jax.random.normal(key, v.shape), x)
  lb = _norm(-_jac_t(problem, perturb, theta, q) - h) / _norm(q)
  q_perturb = _cg(problem, perturb, theta, grad_f, delta)
  la_inv = (_norm(jax.tree.map(jnp.subtract, q_perturb, q))
            / _norm(grad_f))
  return b_x, lb, la_inv, _norm(grad_f)


def error_bound(b_x, lb, la_inv, grad_f_norm, mu, eps, delta):
  """`omega(eps, delta)`, the official `bound`: `c eps + (B/mu) delta +
  (L_B/mu) eps^2`, `c = B/mu + L_{A^-1} ||grad f|| B + L_B ||grad f||/mu`."""
  c = b_x / mu + la_inv * grad_f_norm * b_x + lb * grad_f_norm / mu
  return c * eps + b_x / mu * delta + lb / mu * eps ** 2


def _record(hist, loss, ll_calls, eps, step):
  hist["loss"].append(float(loss))
  hist["ll_calls"].append(int(ll_calls))
  hist["eps"].append(float(eps))
  hist["step"].append(float(step))


def maid(problem: Problem, theta0: jax.Array, x0: PyTree, *, eps: float,
         delta: float, beta: float, eta: float = 1e-4, rho: float = 0.5,
         tau: float = 0.5, nu: float = 1.25, max_iter: int = 100,
         max_bt_loop: int = 3, ll_budget: int = 10 ** 6, ll_max_iter: int = 2000,
         seed: int = 0) -> tuple[jax.Array, dict[str, list]]:
  """MAID (the official `MAID.main`, adaptive accuracies). Returns
  `(theta, history)`; history lists per accepted or failed iteration the
  (inexact) upper loss, cumulative lower-level iterations, eps, step."""
  key = jax.random.PRNGKey(seed)
  theta, x = theta0, x0
  ll_calls, lb, la_inv = 0, 0.0, 0.0
  hist = {"loss": [], "ll_calls": [], "eps": [], "step": []}
  loss = float(problem.upper(x))
  _record(hist, loss, 0, eps, beta)
  for _ in range(max_iter):
    if ll_calls > ll_budget:
      break
    for j in range(max_bt_loop):
      while True:   # accuracies until the bound certifies a descent direction
        x_t, k = lower_solve(problem, theta, x, eps, ll_max_iter)
        ll_calls += int(k)
        h, q = hypergradient(problem, theta, x_t, delta)
        key, sub = jax.random.split(key)
        b_x, lb_i, la_i, gf = _bound_terms(problem, theta, x_t, h, q, delta,
                                           sub)
        lb, la_inv = max(lb, float(lb_i)), max(la_inv, float(la_i))
        omega = error_bound(float(b_x), lb, la_inv, float(gf),
                            float(problem.mu(theta)), eps, delta)
        h_norm = float(_norm(h))
        if omega / max(h_norm, 1e-30) <= 1 - eta or eps < 1e-12:
          break
        eps, delta = tau * eps, tau * delta
      x = x_t
      accepted = False
      grad_old = float(_norm(jax.grad(problem.upper)(x)))
      for i in range(j + 10):
        step = beta * rho ** i
        theta_new = theta - step * h
        x_new, k = lower_solve(problem, theta_new, x, eps, ll_max_iter)
        ll_calls += int(k)
        f_new = float(problem.upper(x_new))
        lhs = (f_new + float(_norm(jax.grad(problem.upper)(x_new))) * eps
               + problem.lip_upper * eps ** 2 / 2 - loss + grad_old * eps)
        if lhs <= -step * eta * eta * h_norm ** 2:
          accepted = True
          break
        if ll_calls > ll_budget:
          break
      if accepted:
        theta, x, loss, beta = theta_new, x_new, f_new, step
        _record(hist, loss, ll_calls, eps, step)
        eps, delta, beta = eps * nu, delta * nu, beta * 10 / 9
        break
      eps, delta = tau * eps, tau * delta
      if ll_calls > ll_budget:
        break
  return theta, hist


def hoag(problem: Problem, theta0: jax.Array, x0: PyTree, *, eps: float,
         accuracy: str = "quadratic", max_iter: int = 100,
         ll_budget: int = 10 ** 6, ll_max_iter: int = 2000,
         clip: float = 1000.0) -> tuple[jax.Array, dict[str, list]]:
  """HOAG (Pedregosa 2016) as the official `MultiClassRegression.HOAG`:
  lower level and CG both to a fixed decreasing tolerance `eps_k`
  ("geometric" 0.9^k... as `rho`, "quadratic" eps0/(k+1)^2, "cubic"
  eps0/(k+1)^3), step 1/L_lambda adapted by Pedregosa's rule."""
  if accuracy not in ("quadratic", "cubic", "geometric", "fixed"):
    raise ValueError(f"accuracy={accuracy!r}; allowed quadratic, cubic, "
                     "geometric, fixed")
  theta, x, eps0 = theta0, x0, eps
  theta_prev = theta0
  ll_calls, g_old, lip_lambda = 0, np.inf, None
  hist = {"loss": [], "ll_calls": [], "eps": [], "step": []}
  _record(hist, problem.upper(x), 0, eps, 0.0)
  for k in range(max_iter):
    x, n = lower_solve(problem, theta, x, eps, ll_max_iter)
    ll_calls += int(n)
    g = float(problem.upper(x))
    h, _ = hypergradient(problem, theta, x, eps)
    h_norm = float(_norm(h))
    if lip_lambda is None:
      lip_lambda = h_norm / np.sqrt(h.size) if h_norm > 1e-3 else 1.0
    step = 1 / lip_lambda
    incr = step * h_norm
    old_eps = eps
    eps = {"geometric": eps * 0.9, "quadratic": eps0 / (k + 1) ** 2,
           "cubic": eps0 / (k + 1) ** 3, "fixed": eps0}[accuracy]
    eps = max(eps, 1e-12)
    if g <= g_old + 0.25 * eps + old_eps * 1.25 * incr - lip_lambda * incr ** 2:
      lip_lambda *= 0.95
      step = 1 / lip_lambda
      theta_prev, theta = theta, theta - step * h
      g_old = g
    elif g >= 1.2 * g_old:
      # The last step raised the loss: undo it (Pedregosa's hoag.py resets
      # the hyperparameter; the MAID repo's HOAG keeps the rejected one and
      # can stall), halve the step and tighten the tolerance.
      lip_lambda *= 2
      theta = theta_prev
      if accuracy != "fixed":
        eps *= 0.5
    else:
      theta_prev, theta = theta, theta - step * h
      g_old = g
    theta = jnp.clip(theta, -clip, clip)
    _record(hist, g, ll_calls, eps, step)
    if ll_calls > ll_budget:
      break
  return theta, hist

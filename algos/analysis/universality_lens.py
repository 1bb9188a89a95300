"""Bayesian-mixture learner over a finite class, its regret and bounds.

Paper: "The Universality Lens: Why Even Highly Over-Parametrized Models
Learn Well" (3 authors, June 2025; a theory paper; its arXiv id and full
text are not readable offline, only the abstract in shared/papers). No
official code: these are the paper's objects built as pure JAX functions
of arrays.

Setting (the paper's, in its online / log-loss form). A finite class of
hypotheses `h = 1..H` with prior `pi` assigns probabilities
`p_h(y_t | x_t)`. The Bayesian mixture predicts

    q(y_t | x_t, past) = sum_h pi(h | past) p_h(y_t | x_t),

and its cumulative log-loss minus that of a reference (the truth `p*`,
or the best hypothesis in hindsight) is the *regret*. The posterior update
is a `lax.scan` of log-space Bayes steps; by the chain rule the cumulative
mixture log-loss equals `-log sum_h pi(h) prod_t p_h(y_t | x_t)` (tested).

Bounds (the paper's exact statement is not readable offline; these are the
standard bounds its abstract describes, Barron's "index of resolvability"):

* pathwise, for every sequence and every `h` in the class:
  `regret vs h <= -log pi(h)`; with `h` the truth (in the class) this is
  `log H` under a uniform prior: the class-size bound.
* in expectation over i.i.d. data from the truth, for every `eps >= 0`:
  `E[regret vs truth after n] <= -log w(eps) + n eps`, where the *weight*
  `w(eps) = sum_{h: KL(p* || p_h) <= eps} pi(h)` is the prior mass of the
  hypotheses KL-close to the truth (KL per example, averaged over x).
  The minimum over `eps` is the paper's claim: regret is governed by the
  weight near the truth, not by the size of the class.

Shapes: `n` examples (time), `H` hypotheses, `E` epsilons.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

_COPY_KL = 1e-6   # a hypothesis this close in KL is a copy of the truth


def normalize_log_prior(log_prior: jax.Array) -> jax.Array:
  """`[H]` log weights -> log probabilities (sum to one)."""
  log_prior = jnp.asarray(log_prior, jnp.float32)
  return log_prior - jax.nn.logsumexp(log_prior)


@jax.jit
def mixture_predictive(log_prior: jax.Array, logliks: jax.Array
                       ) -> tuple[jax.Array, jax.Array]:
  """Sequential Bayesian-mixture predictions over a finite class.

  Args:
    log_prior: `[H]` log prior weights (normalised here).
    logliks: `[n, H]` `log p_h(y_t | x_t)` of each hypothesis at each step.

  Returns:
    `(mix [n], log_post [H])`: `mix[t] = log q(y_t | x_t, y_<t)`, the
    mixture's predictive log-probability of the observed outcome given the
    past, and the log posterior after all `n` steps.
  """
  def step(log_post, ll):
    joint = log_post + ll
    lp = jax.nn.logsumexp(joint)
    return joint - lp, lp
  log_post, mix = jax.lax.scan(step, normalize_log_prior(log_prior),
                               jnp.asarray(logliks, jnp.float32))
  return mix, log_post


def joint_mixture_logprob(log_prior: jax.Array, logliks: jax.Array
                          ) -> jax.Array:
  """`log sum_h pi(h) prod_t p_h(y_t | x_t)` (scalar): the batch form."""
  return jax.nn.logsumexp(normalize_log_prior(log_prior)
                          + jnp.sum(logliks, axis=0))


def cumulative_regret(mix: jax.Array, reference: jax.Array) -> jax.Array:
  """`[n]` cumulative log-loss of the mixture minus the reference's.

  Args:
    mix: `[n]` the mixture's log-probabilities of the outcomes.
    reference: `[n]` the reference predictor's (e.g. the truth's).
  """
  return jnp.cumsum(reference - mix)


def best_in_class_logprob(logliks: jax.Array) -> jax.Array:
  """`[n]` cumulative log-probability of the best hypothesis in hindsight
  after each prefix: `max_h sum_{s <= t} log p_h(y_s | x_s)`."""
  return jnp.max(jnp.cumsum(logliks, axis=0), axis=1)


def hypothesis_log_weight(log_prior: jax.Array, kl: jax.Array,
                          eps: jax.Array) -> jax.Array:
  """Log prior weight of the hypotheses within KL `eps` of the truth.

  Args:
    log_prior: `[H]`.
    kl: `[H]` `KL(p* || p_h)` per example (>= 0).
    eps: `[E]` (or scalar) radii.

  Returns:
    `[E]` `log sum_{h: kl_h <= eps} pi(h)` (`-inf` where none is close);
    `O((H + E) log H)` through a sort and a cumulative logsumexp.
  """
  order = jnp.argsort(kl)
  sorted_kl = kl[order]
  cum = jax.lax.cumlogsumexp(normalize_log_prior(log_prior)[order])
  eps = jnp.atleast_1d(jnp.asarray(eps, kl.dtype))
  last = jnp.searchsorted(sorted_kl, eps, side="right") - 1
  return jnp.where(last >= 0, cum[jnp.maximum(last, 0)], -jnp.inf)


def resolvability_bound(log_prior: jax.Array, kl: jax.Array, n: jax.Array,
                        eps_grid: jax.Array | None = None
                        ) -> tuple[jax.Array, jax.Array]:
  """`min_eps -log w(eps) + n eps` for each horizon `n`.

  Args:
    log_prior: `[H]`.
    kl: `[H]` per-example KL of each hypothesis from the truth.
    n: `[T]` horizons (numbers of examples).
    eps_grid: `[E]` candidate radii; default: every KL value of the class
      (the minimum over all `eps` is attained at one of them).

  Returns:
    `(bound [T], eps_star [T])`: the bound on the expected regret against
    the truth after `n` examples, and the minimising radius.
  """
  eps = jnp.sort(kl) if eps_grid is None else jnp.asarray(eps_grid)
  neg_log_w = -hypothesis_log_weight(log_prior, kl, eps)       # [E]
  n = jnp.atleast_1d(jnp.asarray(n, jnp.float32))

  def one(t):
    total = neg_log_w + t * eps
    i = jnp.argmin(total)
    return total[i], eps[i]
  return jax.lax.map(one, n)


@jax.jit
def regret_report(log_prior: jax.Array, logliks: jax.Array,
                  truth_ll: jax.Array, kl: jax.Array) -> dict[str, jax.Array]:
  """Everything a regret study reports, in one compiled call.

  Args:
    log_prior: `[H]`.
    logliks: `[n, H]` the hypotheses' log-probabilities of the outcomes.
    truth_ll: `[n]` the truth's.
    kl: `[H]` per-example KL of each hypothesis from the truth.

  Returns:
    `regret` `[n]` (vs the truth), `regret_best` `[n]` (vs the best in
    hindsight), `bound` `[n]` and `eps_star` `[n]` (resolvability bound at
    `n = 1..n`), `pathwise` (`-log w(0)`, the prior mass of the truth's
    copies, KL <= 1e-6 for float error: a bound for every sequence).
  """
  mix, _ = mixture_predictive(log_prior, logliks)
  n = jnp.arange(1, logliks.shape[0] + 1)
  bound, eps = resolvability_bound(log_prior, kl, n)
  return {"regret": cumulative_regret(mix, truth_ll),
          "regret_best": best_in_class_logprob(logliks) - jnp.cumsum(mix),
          "bound": bound, "eps_star": eps,
          "pathwise": -hypothesis_log_weight(log_prior, kl, _COPY_KL)[0]}


def bernoulli_logliks(logits: jax.Array, y: jax.Array) -> jax.Array:
  """`log p(y | logit)` for binary `y` in {0, 1}: `[n, H]` from
  `logits [n, H]` and `y [n]`."""
  sign = 2.0 * jnp.asarray(y, jnp.float32)[:, None] - 1.0
  return jax.nn.log_sigmoid(sign * logits)


def bernoulli_kl(p_logits: jax.Array, q_logits: jax.Array) -> jax.Array:
  """Elementwise `KL(Bern(sigmoid(p)) || Bern(sigmoid(q)))`, stable."""
  p1 = jax.nn.sigmoid(p_logits)
  return (p1 * (jax.nn.log_sigmoid(p_logits) - jax.nn.log_sigmoid(q_logits))
          + (1 - p1) * (jax.nn.log_sigmoid(-p_logits)
                        - jax.nn.log_sigmoid(-q_logits)))


def expected_kl(true_logits: jax.Array, hyp_logits: jax.Array) -> jax.Array:
  """`[H]` `E_x KL(p*(.|x) || p_h(.|x))` over `m` inputs: `true_logits
  [m]`, `hyp_logits [m, H]`."""
  return jnp.mean(bernoulli_kl(true_logits[:, None], hyp_logits), axis=0)


# ------------------------------------------------------ hypothesis classes
def quantized_nets(width: int, dim: int, levels: tuple[float, ...] = (
    -1.0, 0.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
  """Every two-layer net `x -> sum_j v_j tanh(w_j . x)` with weights in
  `levels`: `(W [H, width, dim], v [H, width])`, `H = |levels| **
  (width * (dim + 1))`. Many parameterisations implement the same function
  (zero units, permutations, sign flips): an over-parametrised class."""
  per = width * (dim + 1)
  grid = np.array(list(itertools.product(levels, repeat=per)), np.float32)
  w = grid[:, :width * dim].reshape(-1, width, dim)
  return w, grid[:, width * dim:]


def net_logits(w: jax.Array, v: jax.Array, x: jax.Array, scale: float
               ) -> jax.Array:
  """`[n, H]` logits `scale * sum_j v_j tanh(w_j . x)` of the nets
  `(w [H, k, d], v [H, k])` on inputs `x [n, d]`."""
  pre = jnp.tanh(jnp.einsum("nd,hkd->nhk", x, w))
  return scale * jnp.einsum("nhk,hk->nh", pre, v)


def redundant_logistic_class(key: jax.Array, theta_true: jax.Array,
                             size: int, num_near: int, near_std: float,
                             far_std: float, far_center: jax.Array | None = None
                             ) -> jax.Array:
  """`[size, d]` logistic hypotheses: the truth first, `num_near - 1`
  within `near_std` of it, the rest spread with `far_std` around
  `far_center` (default 0).

  Under a uniform prior the truth's neighbourhood has weight
  `num_near / size`: growing `size` with `num_near / size` fixed grows the
  class at equal weight (redundant parameterisations of simple functions);
  growing it with `num_near` fixed shrinks the weight.
  """
  if not 1 <= num_near <= size:
    raise ValueError(f"num_near={num_near} must be in [1, size={size}]")
  k1, k2 = jax.random.split(key)
  d = theta_true.shape[-1]
  near = theta_true + near_std * jax.random.normal(k1, (num_near - 1, d))
  center = 0.0 if far_center is None else jnp.asarray(far_center)
  far = center + far_std * jax.random.normal(k2, (size - num_near, d))
  return jnp.concatenate([theta_true[None], near, far])

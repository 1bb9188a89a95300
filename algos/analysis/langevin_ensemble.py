"""An SGLD ensemble of logistic models, and the exact posterior it targets.

Paper: "The Universality Lens: Why Even Highly Over-Parametrized Models
Learn Well" (2025; arXiv id not readable offline); no official code. Its
abstract recalls that stochastic gradient Langevin dynamics samples the
posterior, so an ensemble of SGLD chains approximates the Bayesian-mixture
learner. Here:

* model `logistic_ensemble`: `K` logistic regressors `theta [K, d]` (no
  bias) in one parameter leaf; "member_logits" `[b, K]`, and "logits"
  `[b, 2]` = the log-probabilities of the ensemble's mixture prediction
  `mean_k sigmoid(theta_k . x)` (what the harness's classification
  metrics read).
* method `ensemble_nll`: the sum over members of each member's mean
  log-loss, so every member gets its own gradient; trained with the
  harness's `sgld` optimizer (`common/core/optim.py`) at temperature `1 /
  N` and weight decay `1 / (N sigma0^2)` each member is a Langevin chain on
  the posterior with prior `N(0, sigma0^2 I)`; at temperature 0 it is an
  ensemble of MAP fits (deep-ensemble control).
* `grid_posterior_predictive`: the exact Bayesian mixture over a fine grid
  of `theta` (a finite hypothesis class with Gaussian prior weights),
  through `universality_lens.mixture_predictive`.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from algos.analysis import universality_lens as ul
from common.core import method as method_lib
from common.models import registry


def ensemble_log_probs(member_logits: jax.Array) -> jax.Array:
  """`[b, K]` member logits -> `[b, 2]` log-probabilities of the mixture
  `mean_k Bern(sigmoid(z_k))` (class 1 = the positive outcome)."""
  k = member_logits.shape[-1]
  log1 = jax.nn.logsumexp(jax.nn.log_sigmoid(member_logits), -1) - jnp.log(k)
  log0 = jax.nn.logsumexp(jax.nn.log_sigmoid(-member_logits), -1) - jnp.log(k)
  return jnp.stack([log0, log1], axis=-1)


@registry.register_model("logistic_ensemble")
class LogisticEnsemble(nn.Module):
  """`members` logistic regressors without bias, stacked in `theta`.

  Attributes:
    num_classes: must be 2.
    members: ensemble size `K`.
    init_std: initial `theta ~ N(0, init_std^2)`.
    dtype: computation dtype.
  """

  num_classes: int
  members: int = 8
  init_std: float = 1.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> dict[str, jax.Array]:
    """`x [b, d]` -> {"logits" `[b, 2]`, "member_logits" `[b, K]`,
    "features" `[b, d]`}."""
    del train
    if self.num_classes != 2:
      raise ValueError(f"logistic_ensemble is binary: num_classes="
                       f"{self.num_classes}, allowed: 2")
    x = jnp.reshape(x, (x.shape[0], -1)).astype(self.dtype)
    theta = self.param(
        "theta", nn.initializers.normal(self.init_std),
        (self.members, x.shape[-1]), jnp.float32)
    z = x @ theta.astype(self.dtype).T
    return {"logits": ensemble_log_probs(z.astype(jnp.float32)),
            "member_logits": z, "features": x}


def member_nll(member_logits: jax.Array, label: jax.Array,
               mask: jax.Array | None) -> jax.Array:
  """`[K]` each member's mean log-loss over the batch's valid rows."""
  ll = ul.bernoulli_logliks(member_logits.astype(jnp.float32), label)
  if mask is None:
    return -jnp.mean(ll, axis=0)
  w = jnp.asarray(mask, jnp.float32)[:, None]
  return -jnp.sum(ll * w, axis=0) / jnp.maximum(jnp.sum(w), 1.0)


def loss(hparams, method_state, outputs, batch, params, rng):
  """Sum over members of their mean log-losses (independent gradients)."""
  del hparams, params, rng
  per = member_nll(outputs["member_logits"], batch["label"],
                   batch.get("mask"))
  mix = -jnp.mean(jnp.take_along_axis(
      outputs["logits"], batch["label"][:, None].astype(jnp.int32), 1))
  return jnp.sum(per), {"member_nll": jnp.mean(per),
                        "mixture_nll": mix}, method_state


@method_lib.register_method("ensemble_nll")
def make(method_config: dict[str, Any]) -> method_lib.Method:
  """The summed member log-loss (no hyperparameters)."""
  if method_config:
    raise ValueError(f"config.method.ensemble_nll takes no settings; got "
                     f"{sorted(method_config)}")
  return method_lib.Method(name="ensemble_nll", init=method_lib.stateless_init,
                           loss=loss)


def grid_posterior_predictive(x_train: jax.Array, y_train: jax.Array,
                              x_test: jax.Array, prior_std: float,
                              radius: float, points: int
                              ) -> tuple[jax.Array, jax.Array, jax.Array]:
  """The exact Bayes mixture over a grid of 2-D logistic hypotheses.

  Args:
    x_train: `[N, 2]`, y_train: `[N]` in {0, 1}.
    x_test: `[m, 2]`.
    prior_std: prior `theta ~ N(0, prior_std^2 I)` (weights on the grid).
    radius: the grid spans `[-radius, radius]^2`.
    points: grid points per axis (`H = points^2` hypotheses).

  Returns:
    `(p1 [m], post_mean [2], post_cov [2, 2])`: the posterior predictive
    `P(y = 1 | x_test, D)` and the posterior's first two moments.
  """
  g = jnp.linspace(-radius, radius, points)
  theta = jnp.stack(jnp.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
  log_prior = -0.5 * jnp.sum(theta ** 2, -1) / prior_std ** 2
  # One Bayes step with the whole data set's log-likelihood (chain rule).
  ll = jnp.sum(ul.bernoulli_logliks(x_train @ theta.T, y_train), 0)
  _, log_post = ul.mixture_predictive(log_prior, ll[None])
  post = jnp.exp(log_post)
  p1 = jax.nn.sigmoid(x_test @ theta.T) @ post
  mean = post @ theta
  centred = theta - mean
  cov = (centred * post[:, None]).T @ centred
  return p1, mean, cov

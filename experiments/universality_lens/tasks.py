"""The SGLD-ensemble study's data (a generator) and its evaluator.

Generator `logistic_posterior` (`config.data.kwargs`): a fixed training
set of `num_train` points `x ~ N(0, I_2)`, `y ~ Bern(sigmoid(theta_true .
x))`, drawn from the run's seed; a batch of size `b` is `b` distinct rows
of it (`b = num_train`: full-batch Langevin dynamics).

Evaluator `bayes_gap`: the exact Bayes mixture over a 121 x 121 grid of
`theta` (`langevin_ensemble.grid_posterior_predictive`, prior `N(0,
prior_std^2)`) against the ensemble's mixture `mean_k sigmoid(theta_k .
x)` on `num_test` held-out inputs of the truth:
* `kl_exact_ens`: mean over x of `KL(p_exact(.|x) || p_ens(.|x))`;
* `logloss_exact`, `logloss_ens`: held-out log-loss (nats) of each;
* `gap_pct`: `100 (logloss_ens - logloss_exact) / logloss_exact`;
* `mean_err`: distance between the members' mean and the posterior mean;
  `std_ratio`: members' mean marginal std / the posterior's.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from algos.analysis import langevin_ensemble as le
from algos.analysis import universality_lens as ul
from common import config as config_lib
from common.data import procedural
from common.eval import evaluators

DEFAULTS = dict(num_train=12, theta_true=(1.5, -1.0), num_test=1000,
                prior_std=2.0, grid_radius=6.0, grid_points=121)
RULES = {
    "num_train": config_lib.at_least(2, integer=True),
    "num_test": config_lib.at_least(2, integer=True),
    "prior_std": config_lib.greater_than(0.0),
    "grid_radius": config_lib.greater_than(0.0),
    "grid_points": config_lib.at_least(3, integer=True),
}
_TRAIN_STREAM, _TEST_STREAM = 0x7A1, 0x7E5


def settings(config: Any) -> dict[str, Any]:
  kw = procedural.settings(config, DEFAULTS, RULES)
  if len(kw["theta_true"]) != 2:
    raise config_lib.ConfigError(
        f"config.data.kwargs.theta_true={kw['theta_true']!r}: the exact grid "
        "posterior is 2-D; give two numbers")
  return kw


def draw(key: jax.Array, theta: jax.Array, n: int) -> dict[str, jax.Array]:
  """`n` examples `{"x": [n, 2], "label": [n]}` of the truth `theta`."""
  kx, ky = jax.random.split(key)
  x = jax.random.normal(kx, (n, theta.shape[0]))
  y = jax.random.bernoulli(ky, jax.nn.sigmoid(x @ theta)).astype(jnp.int32)
  return {"x": x, "label": y}


def data(config: Any, split: str) -> dict[str, jax.Array]:
  """The run's training set or held-out set (fixed per seed)."""
  kw = settings(config)
  theta = jnp.asarray(kw["theta_true"], jnp.float32)
  stream, n = ((_TRAIN_STREAM, kw["num_train"]) if split == "train"
               else (_TEST_STREAM, kw["num_test"]))
  return draw(jax.random.fold_in(jax.random.PRNGKey(config.seed), stream),
              theta, n)


@procedural.register_generator("logistic_posterior")
def make(config: Any) -> procedural.Generator:
  """Batches of distinct rows of the run's fixed training set."""
  kw = settings(config)
  train = data(config, "train")
  n = kw["num_train"]

  def sample(rng, b):
    if b > n:
      raise ValueError(f"train.batch_size={b} exceeds data.kwargs.num_train"
                       f"={n}")
    idx = jax.random.permutation(rng, n)[:b]
    return {"x": train["x"][idx], "label": train["label"][idx]}
  return procedural.Generator(sample=sample,
                              example=procedural.example_from(sample),
                              num_classes=2, epoch_size=n,
                              eval_examples=kw["num_test"])


def _members(state: Any) -> np.ndarray:
  params = state.params.get("params", state.params)
  return np.asarray(params["theta"])


@evaluators.register_evaluator("bayes_gap")
def evaluate(setup: Any, state: Any) -> dict[str, float]:
  """The ensemble's predictive against the exact grid mixture."""
  cfg = setup.config
  kw = settings(cfg)
  train, test = data(cfg, "train"), data(cfg, "test")
  p_exact, mean, cov = le.grid_posterior_predictive(
      train["x"], train["label"], test["x"], kw["prior_std"],
      kw["grid_radius"], kw["grid_points"])
  theta = jnp.asarray(_members(state))                        # [K, 2]
  p_ens = jnp.mean(jax.nn.sigmoid(test["x"] @ theta.T), axis=1)
  logit = lambda p: jnp.log(p) - jnp.log1p(-p)
  clip = lambda p: jnp.clip(p, 1e-7, 1 - 1e-7)
  kl = jnp.mean(ul.bernoulli_kl(logit(clip(p_exact)), logit(clip(p_ens))))
  y = test["label"]
  nll = lambda p: -jnp.mean(ul.bernoulli_logliks(logit(clip(p))[:, None], y))
  ll_exact, ll_ens = nll(p_exact), nll(p_ens)
  std_post = jnp.sqrt(jnp.diag(cov))
  std_ens = (jnp.std(theta, axis=0) if theta.shape[0] > 1
             else jnp.zeros_like(std_post))
  return {"kl_exact_ens": float(kl), "logloss_exact": float(ll_exact),
          "logloss_ens": float(ll_ens),
          "gap_pct": float(100 * (ll_ens - ll_exact) / ll_exact),
          "mean_err": float(jnp.linalg.norm(jnp.mean(theta, 0) - mean)),
          "std_ratio": float(jnp.mean(std_ens / std_post))}

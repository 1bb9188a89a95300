"""Bayes mixture, regret bounds and the SGLD optimizer (universality_lens)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from algos.analysis import langevin_ensemble as le
from algos.analysis import universality_lens as ul
from common.core import optim
from common.core import train_step


def _random_case(seed, n=6, h=4):
  rng = np.random.default_rng(seed)
  probs = rng.uniform(0.05, 0.95, (n, h))          # p_h(y_t = 1)
  y = rng.integers(0, 2, n)
  logliks = np.log(np.where(y[:, None] == 1, probs, 1 - probs))
  log_prior = np.log(rng.dirichlet(np.ones(h)))
  return log_prior, logliks


def test_mixture_posterior_equals_brute_force_bayes():
  log_prior, logliks = _random_case(0)
  mix, log_post = ul.mixture_predictive(log_prior, logliks)
  prior = np.exp(log_prior)
  post, expected = prior.copy(), []
  for ll in np.exp(logliks):            # Bayes' rule, one outcome at a time
    expected.append(np.log(np.sum(post * ll)))
    post = post * ll / np.sum(post * ll)
  np.testing.assert_allclose(mix, expected, rtol=1e-5)
  np.testing.assert_allclose(np.exp(log_post), post, rtol=1e-5)
  # Chain rule: the sequential losses sum to the batch mixture's.
  np.testing.assert_allclose(jnp.sum(mix),
                             ul.joint_mixture_logprob(log_prior, logliks),
                             rtol=1e-5)


def test_pathwise_bound_holds_on_random_sequences():
  for seed in range(5):
    log_prior, logliks = _random_case(seed, n=40, h=7)
    # Every hypothesis in turn as the reference ("truth").
    for h in (0, 3, 6):
      rep = ul.regret_report(log_prior, logliks, logliks[:, h],
                             np.where(np.arange(7) == h, 0.0, 1.0))
      assert np.all(rep["regret"] <= -log_prior[h] + 1e-4)
      np.testing.assert_allclose(rep["pathwise"], -log_prior[h], rtol=1e-5)
      assert np.all(rep["regret_best"] >= -1e-4)   # best in hindsight >= q


def test_regret_of_a_class_of_only_the_truth_is_zero():
  _, logliks = _random_case(1, n=40, h=1)
  copies = np.repeat(logliks, 7, axis=1)       # 7 copies of the truth
  rep = ul.regret_report(np.zeros(7), copies, logliks[:, 0], np.zeros(7))
  np.testing.assert_allclose(rep["regret"], 0.0, atol=1e-5)
  np.testing.assert_allclose(rep["bound"], 0.0, atol=1e-5)


def test_weight_and_resolvability_bound_equal_brute_force():
  rng = np.random.default_rng(3)
  log_prior = np.log(rng.dirichlet(np.ones(50))).astype(np.float32)
  kl = np.round(rng.exponential(0.2, 50), 2).astype(np.float32)   # ties
  eps = np.array([-1.0, 0.0, 0.05, 0.2, 10.0], np.float32)
  n = np.array([1.0, 10.0, 100.0], np.float32)
  weight, (bound, eps_star) = jax.jit(lambda lp, k: (
      ul.hypothesis_log_weight(lp, k, eps),
      ul.resolvability_bound(lp, k, n)))(log_prior, kl)
  prior = np.exp(log_prior.astype(np.float64))
  prior /= prior.sum()
  brute = [np.log(np.sum(prior[kl <= e])) if np.any(kl <= e) else -np.inf
           for e in eps]
  np.testing.assert_allclose(weight, brute, rtol=1e-4, atol=1e-5)
  expected = [min(-np.log(np.sum(prior[kl <= e])) + t * e for e in kl)
              for t in n]
  np.testing.assert_allclose(bound, expected, rtol=1e-4)
  assert np.all(np.diff(eps_star) <= 0)    # more data: a tighter radius


def test_expected_regret_under_the_resolvability_bound():
  """Monte Carlo over i.i.d. Bernoulli sequences (KL exact here)."""
  p = np.linspace(0.05, 0.95, 19, dtype=np.float32)   # truth p = 0.3
  truth, n, reps = 0.3, 40, 200
  y = np.random.default_rng(0).random((reps, n)) < truth

  @jax.jit
  def regret_and_bound(y):
    logliks = jnp.where(y[..., None], jnp.log(p), jnp.log(1 - p))
    mix, _ = jax.vmap(ul.mixture_predictive, (None, 0))(jnp.zeros(19),
                                                         logliks)
    t_ll = jnp.where(y, np.log(truth), np.log(1 - truth))
    kl = ul.bernoulli_kl(np.log(truth / (1 - truth)), jnp.log(p / (1 - p)))
    bound, _ = ul.resolvability_bound(jnp.zeros(19), kl, jnp.array([n]))
    return jnp.mean(jnp.sum(t_ll, 1) - jnp.sum(mix, 1)), bound[0]
  mean_regret, bound = regret_and_bound(y)
  assert 0.0 < mean_regret <= bound


def test_ensemble_log_probs_is_the_mean_of_member_probabilities():
  z = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32) * 3
  lp = np.asarray(jax.jit(le.ensemble_log_probs)(z))
  np.testing.assert_allclose(np.exp(lp[:, 1]),
                             np.mean(1 / (1 + np.exp(-z)), 1), rtol=1e-5)
  np.testing.assert_allclose(np.exp(lp).sum(1), 1.0, rtol=1e-5)


_STEPS, _LR = 100, 0.1


@jax.jit
def _run_sgld(optim_hp):
  """4000 chains on U = theta^2 / 2 (+ weight decay 0.5 theta) from 1,
  through the harness' optimizer_step, in one scan."""
  tx = optim.make_optimizer("sgld")
  hp = {"optim": optim_hp, "schedule": {
      "learning_rate": jnp.float32(_LR), "warmup_steps": jnp.float32(0),
      "total_steps": jnp.float32(_STEPS), "boundaries": jnp.zeros(1),
      "decay_factor": jnp.float32(1)}}
  theta = {"theta": jnp.ones(4000)}

  def body(carry, step):
    params, opt = carry
    params, opt, _ = train_step.optimizer_step(tx, "constant", hp, step,
                                               params, opt, params)
    return (params, opt), None
  (params, _), _ = jax.lax.scan(body, (theta, tx.init(theta)),
                                jnp.arange(_STEPS))
  return params["theta"]


def _hp(temperature, seed):
  return {k: jnp.float32(v) for k, v in dict(
      temperature=temperature, weight_decay=0.5, max_norm=1.0,
      noise_seed=seed).items()}


def test_sgld_samples_the_gibbs_distribution_and_is_sgd_at_zero_temperature():
  # grad U + wd theta = 1.5 theta: theta' = (1 - 1.5 lr) theta + noise; the
  # chain's stationary variance is 2 lr T / (1 - (1 - 1.5 lr)^2).
  temp = 0.2
  theta = np.asarray(_run_sgld(_hp(temp, 1.0)))
  var = 2 * _LR * temp / (1 - (1 - 1.5 * _LR) ** 2)
  assert abs(np.mean(theta)) < 0.05
  assert np.var(theta) == pytest.approx(var, rel=0.08)
  np.testing.assert_allclose(_run_sgld(_hp(0.0, 1.0)),
                             (1 - 1.5 * _LR) ** _STEPS, rtol=1e-4)
  # The noise follows the run's seed, deterministically.
  np.testing.assert_array_equal(theta, _run_sgld(_hp(temp, 1.0)))
  assert not np.allclose(theta, _run_sgld(_hp(temp, 2.0)))


def test_sgld_needs_a_temperature():
  cfg = type("O", (), dict(name="sgld", weight_decay=0.0, clip_grad_norm=0.0,
                           get=lambda self, k, d=None: d))()
  with pytest.raises(ValueError, match="optim.temperature"):
    optim.optimizer_hparams(cfg)

"""LDR-KL / ALDR-KL: the paper's properties of the loss, the adaptive lambda,
the method's state and traced hyperparameters, gradients.

The consistency and robustness claims that are properties of the loss:
  * special cases: lam = 1, margin 0 is CE - log K; margin 0 is
    temperature-scaled CE;
  * limits: mean_k m_k <= psi_lam <= max_k m_k and max_k m_k - lam log K <=
    psi_lam (so lam -> 0 is the Crammer-Singer hinge), psi_lam - mean_k m_k
    <= range(m)^2 / (8 lam) (Hoeffding; lam -> inf is the mean of the
    margins, a symmetric loss: its sum over labels is constant), psi_lam
    non-increasing in lam;
  * All-k (top-k for every k) consistency requires the minimiser of the
    conditional risk sum_y q_y psi(z, y) to rank the classes as q does:
    checked numerically for LDR-KL over a grid of lam and margins; the
    counter-examples of the paper's negative results hold exactly: the CS
    hinge (lam -> 0) is minimised by constant scores when no class has
    q_y > 1/2 (not top-1 consistent), and MAE, a symmetric loss, has
    near-minimisers of its conditional risk that reverse the order of all
    but the top class (not top-2 consistent).
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

from algos.noisy_labels import ldr
from algos.noisy_labels import robust_losses as rl
from common import config as config_lib
from common.core import method as method_lib

K = 5


@pytest.fixture(autouse=True)
def float64():
  """Float64: the limits are checked at lam up to 1e4, where float32
  round-off of `lam * logsumexp` reaches 1e-3."""
  with jax.enable_x64(True):
    yield


def _logits(seed=0, b=8, scale=2.0):
  rng = np.random.default_rng(seed)
  return (jnp.asarray(scale * rng.standard_normal((b, K))),
          jnp.asarray(rng.integers(0, K, b)))


def _risk(loss, z, q):
  """Conditional risk `sum_y q_y loss(z, y)` of one score vector `z` [K]."""
  return jnp.sum(q * loss(jnp.broadcast_to(z, (K, K)), jnp.arange(K)))


def test_special_cases_are_ce_and_temperature_scaled_ce():
  z, y = _logits()
  np.testing.assert_allclose(ldr.ldr_kl(z, y, 1.0, 0.0),
                             rl.ce(z, y) - jnp.log(K), rtol=1e-5, atol=1e-6)
  tau = 0.3
  np.testing.assert_allclose(ldr.ldr_kl(z, y, tau, 0.0),
                             tau * (rl.ce(z / tau, y) - jnp.log(K)),
                             rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("margin", [0.0, 0.1, 2.0])
def test_limits_in_lambda(margin):
  z, y = _logits(1)
  m = rl.margins(z, y, margin)
  mean, top = jnp.mean(m, -1), jnp.max(m, -1)
  spread = top - jnp.min(m, -1)
  lams = jnp.array([1e-3, 0.01, 0.1, 1.0, 10.0, 100.0, 1e4])
  values = jax.jit(jax.vmap(lambda lam: ldr.ldr_kl(z, y, lam, margin)))(lams)
  tol = 1e-5
  assert np.all(values <= top + tol) and np.all(values >= mean - tol)
  assert np.all(values >= top - lams[:, None] * jnp.log(K) - tol)
  assert np.all(values - mean <= spread**2 / (8 * lams[:, None]) + tol)
  assert np.all(np.diff(values, axis=0) <= tol)       # non-increasing
  np.testing.assert_allclose(values[0], rl.cs(z, y, margin), atol=2e-3)
  np.testing.assert_allclose(values[-1], mean, atol=1e-3)


def test_large_lambda_is_symmetric():
  """sum_y psi(z, y) -> margin (K - 1), a constant (the lam -> inf limit is
  a symmetric loss), with a gap at most K range(m)^2 / (8 lam)."""
  z, _ = _logits(2, b=1)
  zs, labels, margin = jnp.broadcast_to(z[0], (K, K)), jnp.arange(K), 0.1
  spread = jnp.max(jnp.max(rl.margins(zs, labels, margin), -1)
                   - jnp.min(rl.margins(zs, labels, margin), -1))
  lams = np.array([1.0, 10.0, 100.0, 1000.0])
  gaps = np.asarray(jax.jit(jax.vmap(lambda lam: jnp.sum(ldr.ldr_kl(
      zs, labels, lam, margin))))(lams)) - margin * (K - 1)
  assert np.all(gaps >= 0) and np.all(gaps <= K * spread**2 / (8 * lams))
  np.testing.assert_allclose(gaps[2:] / gaps[1:-1], 0.1, rtol=0.02)  # 1/lam
  np.testing.assert_allclose(
      jnp.sum(jnp.mean(rl.margins(zs, labels, margin), -1)), margin * (K - 1))


@jax.jit
def _ldr_risk_and_grad(z, q, lam, margin):
  return jax.value_and_grad(lambda s: _risk(
      lambda zz, y: ldr.ldr_kl(zz, y, lam, margin), s, q))(z)


def test_conditional_risk_minimiser_ranks_classes_like_q():
  """All-k consistency: argmin_z E_{y~q} psi(z, y) orders classes as q."""
  rng = np.random.default_rng(0)
  for lam, margin in [(0.1, 0.0), (1.0, 1.0), (0.2, 5.0), (5.0, 0.5),
                      (1.0, 5.0)]:
    for _ in range(3):
      q = jnp.asarray(rng.dirichlet(np.ones(K)))
      res = scipy.optimize.minimize(
          lambda z, q=q, lam=lam, margin=margin: tuple(
              np.asarray(v, np.float64)
              for v in _ldr_risk_and_grad(z, q, lam, margin)),
          np.zeros(K), jac=True, method="BFGS", options=dict(gtol=1e-10))
      assert np.abs(res.jac).max() < 1e-6, (lam, margin, q)
      np.testing.assert_array_equal(np.argsort(-res.x), np.argsort(-q),
                                    err_msg=f"lam={lam} margin={margin}")


def test_cs_hinge_does_not_identify_the_top_class():
  """lam -> 0 (CS): with max_y q_y < 1/2 constant scores minimise the
  conditional risk, so the top class is not recovered."""
  q = jnp.array([0.35, 0.25, 0.2, 0.12, 0.08])
  cs = lambda s, y: rl.cs(s, y, 1.0)
  base = _risk(cs, jnp.zeros(K), q)
  directions = np.random.default_rng(0).standard_normal((200, K))
  directions = np.concatenate([directions, [np.log(q)]])
  scores = jnp.asarray(np.concatenate([eps * directions
                                       for eps in (1e-3, 0.1, 1.0)]))
  risks = jax.jit(jax.vmap(lambda z: _risk(cs, z, q)))(scores)
  assert np.all(risks >= base - 1e-12)


def test_mae_is_symmetric_and_not_top2_consistent():
  """MAE: sum_y MAE(z, y) = 2 (K - 1); scores that reverse the order of
  every class but the top one approach the infimum of its risk as fast as
  correctly ordered ones."""
  z, _ = _logits(3, b=1)
  sums = jnp.sum(rl.mae(jnp.broadcast_to(z[0], (K, K)), jnp.arange(K)))
  np.testing.assert_allclose(sums, 2 * (K - 1), rtol=1e-6)
  q = jnp.array([0.4, 0.25, 0.2, 0.1, 0.05])
  infimum = 2 * (1 - q[0])
  ordered = jnp.array([1.0, 0.0, -0.1, -0.2, -0.3])
  reversed_ = jnp.array([1.0, -0.3, -0.2, -0.1, 0.0])
  for s in (20.0, 40.0):
    gap_ok = _risk(rl.mae, s * ordered, q) - infimum
    gap_bad = _risk(rl.mae, s * reversed_, q) - infimum
    assert 0 < gap_bad < 1e-6 and 0 < gap_ok < 1e-6


def test_adaptive_lambda_is_the_penalised_maximiser():
  """For fixed p, lam* = lam0 (1 - KL / (alpha log K)) maximises
  -lam KL(p || 1/K) - (alpha log K / (2 lam0)) (lam - lam0)^2, and lies in
  [lam0 (1 - 1/alpha), lam0]."""
  z, _ = _logits(4, scale=5.0)
  lam0, alpha = 2.0, 1.5
  lam_old = jnp.full((z.shape[0],), 0.7)
  lam = ldr.aldr_lambda(z, lam_old, lam0, alpha)
  p = jax.nn.softmax(z / 0.7) + 1e-5
  p = p / p.sum(-1, keepdims=True)
  kl = jnp.sum(p * jnp.log(K * p), -1)
  objective = lambda l: jnp.sum(-l * kl - alpha * jnp.log(K) / (2 * lam0)
                                * (l - lam0)**2)
  np.testing.assert_allclose(jax.grad(objective)(lam), 0.0, atol=1e-5)
  assert np.all(lam <= lam0) and np.all(lam >= lam0 * (1 - 1 / alpha))
  assert float(jnp.std(lam)) > 0.01   # per-instance, not one value


def test_aldr_table_first_visit_write_and_mask():
  loss = ldr.make_loss("aldr_kl", "official")
  z, y = _logits(5)
  hp = {"lam": jnp.float32(1.0), "alpha": jnp.float32(2.0),
        "margin": jnp.float32(0.1)}
  run = method_lib.RunInfo(num_examples=12, num_classes=K, steps_per_epoch=1,
                           num_epochs=1, total_steps=1, global_batch_size=8)
  state = ldr.init(None, method_lib.InitContext(run, {}, {},
                                                {"loss_name": "aldr_kl"}))
  mask = jnp.arange(8) < 7
  batch = {"label": y, "index": jnp.arange(8) + 4, "mask": mask,
           "clean_label": y.at[0].set((y[0] + 1) % K)}
  _, metrics, new = loss(hp, state, {"logits": z}, batch, {}, None)
  zn = ldr.normalize_logits(z, "l1")
  expected = ldr.aldr_lambda(zn, jnp.ones(8), 1.0, 2.0)   # first visit: lam0
  np.testing.assert_allclose(new["lam"][4:11], expected[:7], rtol=1e-6)
  np.testing.assert_array_equal(new["lam"][:4], 0.0)
  np.testing.assert_array_equal(new["lam"][11:], 0.0)     # masked row 11
  np.testing.assert_allclose(metrics["lam_noisy"], expected[0], rtol=1e-6)
  assert ldr.init(None, method_lib.InitContext(run, {}, {},
                                               {"loss_name": "ce"})) == {}


def test_every_loss_gradient_matches_finite_differences():
  """jax.grad of every loss of the method against central differences
  (float64, all coordinates at once, all losses in one compilation)."""
  hp = {k: jnp.float64(v) for k, v in ldr.DEFAULTS.items()
        if isinstance(v, float)}
  hp["lam"] = jnp.float64(0.7)
  z, y = _logits(6, b=4)
  batch = {"label": y, "index": jnp.arange(4), "mask": jnp.ones(4, bool)}
  steps = 1e-6 * jnp.eye(z.size).reshape(-1, *z.shape)

  def objectives(name):
    loss = ldr.make_loss(name, "official")
    state = {"lam": jnp.full((4,), 0.9)} if name == "aldr_kl" else {}
    f = lambda s: loss(hp, state, {"logits": s}, batch, {}, None)[0]
    if name != "aldr_kl":
      return f, f
    # lambda is detached (as official): hold it fixed in the reference.
    lam = ldr.aldr_lambda(ldr.normalize_logits(z, "l1"), state["lam"],
                          hp["lam"], hp["alpha"])
    return f, lambda s: jnp.mean(ldr.ldr_kl(ldr.normalize_logits(s, "l1"),
                                            y, lam, hp["margin"]))

  @jax.jit
  def both():
    out = {}
    for name in ldr.LOSSES:
      f, reference = objectives(name)
      numeric = jax.vmap(lambda d, g=reference: (g(z + d) - g(z - d))
                         / 2e-6)(steps)
      out[name] = (jax.grad(f)(z), numeric.reshape(z.shape))
    return out

  for name, (grad, numeric) in both().items():
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8,
                               err_msg=name)


def test_hyperparameters_are_traced():
  """A sweep over the numbers of a loss never recompiles."""
  z, y = _logits(7)
  batch = {"label": y, "index": jnp.arange(8), "mask": jnp.ones(8, bool)}
  loss = ldr.make_loss("aldr_kl", "official")
  hp0 = {k: jnp.float32(v) for k, v in ldr.DEFAULTS.items()
         if isinstance(v, float)}

  @jax.jit
  @chex.assert_max_traces(n=1)
  def step(hp, state):
    return loss(hp, state, {"logits": z}, batch, {}, None)

  state = {"lam": jnp.zeros((8,))}
  values = []
  for lam, alpha, margin in [(10.0, 2.0, 0.1), (1.0, 3.0, 0.5)]:
    hp = dict(hp0, lam=jnp.float32(lam), alpha=jnp.float32(alpha),
              margin=jnp.float32(margin))
    values.append(float(step(hp, state)[0]))
  assert values[0] != values[1]


def test_bad_config_is_a_one_line_error():
  with pytest.raises(config_lib.ConfigError, match="loss_name='hinge'.*ce"):
    ldr.make({"loss_name": "hinge"})
  config = config_lib.load_config("experiments/ldr/config.py")
  from common import protocols  # pylint: disable=g-import-not-at-top
  for key, value in [("alpha", 1.0), ("lam", 0.0), ("gce_q", 0.0),
                     ("logit_norm", "l2")]:
    bad = config_lib.apply_overrides(config, {f"method.ldr.{key}": value})
    with pytest.raises(config_lib.ConfigError, match=f"method.ldr.{key}"):
      protocols.validate(bad)

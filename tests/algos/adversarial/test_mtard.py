"""B-MTARD's balancing rules and losses against the official code's lines.

The references are numpy transcriptions of `resnet18_mtard_cifar10.py`
(zhaoshiji123/MTARD-extension): the `kl_loss` / `entropy_value` helpers,
the temperature update and the loss-weight update, run on Python floats
step by step as the official loop does.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from algos.adversarial import ard
from algos.adversarial import mtard


def _softmax(z):
  e = np.exp(z - z.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def _log_softmax(z):
  return np.log(_softmax(z))


def _official_step(state, s_adv, s_nat, t_adv, t_nat, temp_lr, weight_lr):
  """One iteration of the official loop's balancing (float64)."""
  kl = lambda a, b: np.mean(-a * b + np.log(b + 1e-5) * b)
  ent = lambda a: np.mean(np.log(a + 1e-5) * a)
  p_adv = _softmax(t_adv / state["temp_adv"])
  p_nat = _softmax(t_nat / state["temp_nat"])
  l_adv, l_nat = kl(_log_softmax(s_adv), p_adv), kl(_log_softmax(s_nat),
                                                    p_nat)
  h_adv, h_nat = ent(p_adv), ent(p_nat)
  st = dict(state)
  st["temp_adv"] = min(max(st["temp_adv"] - temp_lr * np.sign(
      h_adv / h_nat - 1), 1.0), 10.0)
  st["temp_nat"] = min(max(st["temp_nat"] - temp_lr * np.sign(
      h_nat / h_adv - 1), 1.0), 10.0)
  if st["init_nat"] is None:
    st["init_nat"], st["init_adv"] = l_nat, l_adv
  lhat_adv, lhat_nat = l_adv / st["init_adv"], l_nat / st["init_nat"]
  lhat_avg = (lhat_adv + lhat_nat) / 2
  r_adv, r_nat = lhat_adv / lhat_avg, lhat_nat / lhat_avg
  st["w_nat"] -= weight_lr * (st["w_nat"] - r_nat / (r_adv + r_nat))
  st["w_adv"] -= weight_lr * (st["w_adv"] - r_adv / (r_adv + r_nat))
  st["w_adv"], st["w_nat"] = max(st["w_adv"], 0), max(st["w_nat"], 0)
  coef = 1.0 / (st["w_adv"] + st["w_nat"])
  st["w_adv"] *= coef
  st["w_nat"] *= coef
  return st, st["w_adv"] * l_adv + st["w_nat"] * l_nat


@jax.jit
def _ours_step(state, s_adv, s_nat, t_adv, t_nat, temp_lr, weight_lr):
  f = lambda x: jnp.asarray(x, jnp.float32)
  p_adv = jax.nn.softmax(f(t_adv) / state["temp_adv"])
  p_nat = jax.nn.softmax(f(t_nat) / state["temp_nat"])
  l_adv = jnp.mean(mtard.official_kl(f(s_adv), p_adv))
  l_nat = jnp.mean(mtard.official_kl(f(s_nat), p_nat))
  h_adv = jnp.mean(mtard.neg_entropy(p_adv))
  h_nat = jnp.mean(mtard.neg_entropy(p_nat))
  st = dict(state)
  st["temp_adv"], st["temp_nat"] = mtard.balance_temperatures(
      state["temp_adv"], state["temp_nat"], h_adv, h_nat, temp_lr, 1.0, 10.0)
  st["init_adv"] = jnp.where(state["init_adv"] < 0, l_adv, state["init_adv"])
  st["init_nat"] = jnp.where(state["init_nat"] < 0, l_nat, state["init_nat"])
  st["w_adv"], st["w_nat"] = mtard.balance_weights(
      state["w_adv"], state["w_nat"], l_adv, l_nat, st["init_adv"],
      st["init_nat"], weight_lr)
  return st, st["w_adv"] * l_adv + st["w_nat"] * l_nat


def test_balancing_follows_the_official_loop_over_many_steps():
  rng = np.random.default_rng(0)
  official = dict(temp_adv=1.0, temp_nat=1.0, w_adv=0.5, w_nat=0.5,
                  init_adv=None, init_nat=None)
  ours = {k: jnp.float32(v if v is not None else -1.0)
          for k, v in official.items()}
  # A confident clean teacher and a softer robust one: T_adv falls to its
  # floor, T_nat rises; the student learns the clean targets faster.
  for step in range(40):
    t_nat = rng.normal(size=(16, 10)) * 4.0
    t_adv = rng.normal(size=(16, 10)) * 1.0
    s_nat = t_nat * min(1.0, 0.1 * step) + rng.normal(size=(16, 10))
    s_adv = rng.normal(size=(16, 10))
    args = (s_adv, s_nat, t_adv, t_nat, 0.05, 0.025)
    official, want = _official_step(official, *args)
    ours, got = _ours_step(ours, *args)
    np.testing.assert_allclose(float(got), want, rtol=2e-5)
    for k in ("temp_adv", "temp_nat", "w_adv", "w_nat"):
      np.testing.assert_allclose(float(ours[k]), official[k], rtol=2e-5,
                                 atol=1e-6)
  assert official["temp_nat"] > 2.0 and official["temp_adv"] == 1.0
  assert official["w_adv"] > 0.5   # the slower-learnt loss gains weight


def test_weight_rule_equals_the_eccv_one_minus_rule():
  """Targets sum to 1, so the extension's clip-and-renormalise equals the
  ECCV code's `w_adv = 1 - w_nat` (there with `bert = 1`)."""
  w_adv, w_nat = jnp.float32(0.3), jnp.float32(0.7)
  new_adv, new_nat = mtard.balance_weights(w_adv, w_nat, 0.8, 0.2, 1.0, 1.0,
                                           0.025)
  eccv_nat = 0.7 - 0.025 * (0.7 - 0.2 / (0.8 + 0.2))
  np.testing.assert_allclose(float(new_nat), eccv_nat, rtol=1e-6)
  np.testing.assert_allclose(float(new_adv), 1 - eccv_nat, rtol=1e-6)


def test_rate_factor_decays_at_the_milestones():
  hp = {"rate_decay": jnp.float32(0.1), "rate_decay_epoch_0": 2.0,
        "rate_decay_epoch_1": 3.0}
  got = [float(mtard.rate_factor(hp, jnp.int32(s), 10, 2))
         for s in (0, 19, 20, 29, 30, 99)]
  np.testing.assert_allclose(got, [1, 1, 0.1, 0.1, 0.01, 0.01], rtol=1e-6)


def test_ard_loss_equals_the_official_kldiv_expression():
  rng = np.random.default_rng(1)
  s_adv, t, s_clean = (rng.normal(size=(8, 10)) for _ in range(3))
  labels = rng.integers(0, 10, 8)
  alpha, temp = 0.7, 30.0
  p_t = _softmax(t / temp)
  kl = np.mean(p_t * (np.log(p_t) - _log_softmax(s_adv / temp)))  # b*C mean
  ce = -np.mean(_log_softmax(s_clean)[np.arange(8), labels])
  want = alpha * temp ** 2 * kl + (1 - alpha) * ce
  got = jnp.mean(jax.jit(ard.ard_loss)(jnp.asarray(s_adv), jnp.asarray(t),
                              jnp.asarray(s_clean), jnp.asarray(labels),
                              alpha, temp))
  np.testing.assert_allclose(float(got), want, rtol=1e-5)

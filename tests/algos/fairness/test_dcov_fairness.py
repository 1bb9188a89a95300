"""dcov_fairness: estimators vs dcor, identities, the loss, JS measures."""

from __future__ import annotations

import functools

import chex
import dcor
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from algos.fairness import dcov
from algos.fairness import dcov_fairness
from algos.fairness import insurance_data
from algos.fairness import protected

BLOCKS = (1, 1, 3)   # gender, age, region (3 categories)


def _data(n=12, seed=0):
  r = np.random.default_rng(seed)
  s, _ = protected.encode(
      (r.integers(0, 2, n), r.normal(size=n), np.arange(n) % 3),
      ("binary", "continuous", "categorical"))
  return r.normal(size=(n, 2)), r.normal(size=(n, 3)), s


@functools.cache
def _estimates():
  """One jitted call: every estimator on the same small inputs."""
  x, y, _ = _data()
  r = np.random.default_rng(1)
  xp = np.concatenate([x, r.normal(size=(4, 2))])
  yp = np.concatenate([y, r.normal(size=(4, 3))])
  mask = np.arange(16) < 12

  @jax.jit
  def fn(x, y, xp, yp, mask):
    out = {}
    for est in ("v", "u"):
      out[f"dcov_{est}"] = dcov.dcov2(x, y, estimator=est)
      out[f"jd2_{est}"] = dcov.jdcov2([x, y], 2.5, estimator=est)
      out[f"masked_{est}"] = dcov.dcov2(xp, yp, mask, est)
      out[f"jd3_{est}"] = dcov.jdcov2([x, y, y[:, :1]], 1.0, estimator=est)
      out[f"jd3_masked_{est}"] = dcov.jdcov2([xp, yp, yp[:, :1]], 1.0, mask,
                                             est)
    return out
  return jax.tree.map(float, fn(x, y, xp, yp, mask)), (x, y)


@pytest.mark.parametrize("est", ["v", "u"])
def test_dcov_matches_dcor_and_jdcov_of_two_blocks_is_dcov(est):
  got, (x, y) = _estimates()
  ref = (dcor.distance_covariance_sqr(x, y) if est == "v"
         else dcor.u_distance_covariance_sqr(x, y))
  np.testing.assert_allclose(got[f"dcov_{est}"], ref, rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(got[f"jd2_{est}"], ref, rtol=1e-4, atol=1e-5)
  # Padded rows count nowhere.
  np.testing.assert_allclose(got[f"masked_{est}"], ref, rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(got[f"jd3_masked_{est}"], got[f"jd3_{est}"],
                             rtol=1e-4, atol=1e-5)
  # Three blocks, c = 1: the V form of Chakraborty and Zhang, eq. (11), and
  # the U form of the authors' companion code (JdCov_sq_unbiased, whose
  # U-centred matrix is minus dcor's).
  blocks, n = (x, y, y[:, :1]), len(x)
  dist = [np.linalg.norm(b[:, None] - b[None], axis=-1) for b in blocks]
  if est == "v":
    ref3 = np.mean(np.prod([1.0 - dcor.double_centered(d) for d in dist],
                           axis=0)) - 1.0
  else:
    ref3 = (np.sum(np.prod([1.0 - dcor.u_centered(d) for d in dist], axis=0))
            / (n * (n - 3)) - n / (n - 3))
  np.testing.assert_allclose(got[f"jd3_{est}"], ref3, rtol=1e-4, atol=1e-5)


def test_zero_for_product_designs_and_constants_and_xor_seen_jointly():
  # Gender x 4 regions, every pair once: the empirical law is a product,
  # so every V-statistic between gender and region is exactly 0. The xor
  # term (2g - 1) * sign(region) is independent of each alone, not of both.
  g = np.repeat([0.0, 1.0], 4)
  region = np.tile(np.arange(4), 2)
  onehot = np.eye(4)[region]
  xor = (2 * g - 1) * np.array([1.0, 1.0, -1.0, -1.0])[region]
  const = np.full(8, 3.0)

  @jax.jit
  def fn(g, onehot, xor, const):
    blocks = [g[:, None], onehot]
    return {"g_region": dcov.dcov2(g, onehot),
            "xor_g": dcov.dcov2(xor, g), "xor_region": dcov.dcov2(xor, onehot),
            "xor_marginal": dcov.marginal_dcov2(xor, blocks),
            "xor_cc": dcov.ccdcov2(xor, blocks),
            "xor_jd": dcov.jdcov2_pred(xor, blocks, 1.0),
            "const_cc": dcov.ccdcov2(const, blocks),
            "const_marginal": dcov.marginal_dcov2(const, blocks),
            "const_jd": dcov.jdcov2_pred(const, blocks, 1.0),
            "s_jd": dcov.jdcov2(blocks, 1.0)}
  v = jax.tree.map(float, fn(g, onehot, xor, const))
  for k in ("g_region", "xor_g", "xor_region", "xor_marginal", "const_cc",
            "const_marginal"):
    assert abs(v[k]) < 1e-6, (k, v[k])
  assert v["xor_cc"] > 0.05
  # A constant prediction leaves JdCov at c * JdCov(S) (here 0): the part
  # that does not depend on the model; the xor prediction raises it.
  np.testing.assert_allclose(v["const_jd"], v["s_jd"], atol=1e-6)
  assert v["xor_jd"] > v["const_jd"] + 0.05


@functools.cache
def _loss_fn():
  @jax.jit
  @chex.assert_max_traces(n=1)
  def fn(lam, c, logits, y, s, mask):
    out = {}
    for kind, task in [(k, "regression") for k in dcov_fairness.KINDS] + [
        ("ccdcov", "classification")]:
      out[kind, task] = dcov_fairness.fair_loss(
          lam, c, logits, y, s, mask, kind=kind, task=task,
          blocks=BLOCKS)[0]
    return out
  return fn


def test_lambda_zero_is_the_task_loss_and_lambda_changes_do_not_retrace():
  _, _, s = _data()
  r = np.random.default_rng(2)
  logits, y = r.normal(size=(12, 1)), r.normal(size=12)
  mask = np.arange(12) < 10
  fn = _loss_fn()
  at0 = fn(0.0, 1.0, logits, y, s, mask)
  at3 = fn(3.0, 0.5, logits, y, s, mask)     # same trace
  for (kind, task), value in at0.items():
    base = dcov_fairness.task_loss(jnp.asarray(logits), y, mask, task)
    np.testing.assert_allclose(value, base, rtol=1e-6)
    if kind != "none":
      assert at3[kind, task] > value
  mse = np.mean((logits[:10, 0] - y[:10]) ** 2)
  np.testing.assert_allclose(at0["none", "regression"], mse, rtol=1e-5)


def test_gradient_of_the_regularised_losses():
  _, _, s = _data(n=7)
  r = np.random.default_rng(3)
  logits, y = r.normal(size=(7, 1)), r.normal(size=7)
  mask = np.ones(7, bool)

  @jax.jit
  def f(lg):
    return jnp.stack([dcov_fairness.fair_loss(
        0.7, 1.0, lg, y, s, mask, kind=kind, task="regression",
        blocks=BLOCKS)[0] for kind in ("marginal", "jdcov", "ccdcov")])
  check_grads(f, (jnp.asarray(logits, jnp.float32),), order=1,
              modes=("rev",), eps=1e-2, atol=2e-2, rtol=2e-2)


def test_js_measures_and_lambda_calibration():
  pred = np.concatenate([np.linspace(0, 1, 100), np.linspace(2, 3, 100)])
  split = np.repeat([0, 1], 100)
  mixed = np.tile([0, 1], 100)
  assert protected.generalised_jsd(pred, split, bins=10) == pytest.approx(
      1.0)                                    # disjoint halves: 1 bit
  assert protected.generalised_jsd(pred, mixed, bins=10) < 0.01
  assert protected.max_subgroup_js(pred, split, bins=10) == pytest.approx(
      protected.js2(np.r_[np.ones(5), np.zeros(5)] / 5,
                    np.full(10, 0.1)))
  assert protected.calibrate_lambda([0, 1, 10, 100], [1.0, 1.01, 1.04, 1.5],
                                    [0.3, 0.2, 0.1, 0.01], 0.05) == 10
  assert protected.intersect(np.array([0, 1, 1]),
                             np.array([2, 0, 2])).tolist() == [2, 3, 5]
  with pytest.raises(ValueError, match="block sizes"):
    protected.split_blocks(np.zeros((3, 4)), (1, 1, 3))


def test_compas_reader_applies_propublicas_filters(tmp_path):
  cols = ("days_b_screening_arrest,is_recid,c_charge_degree,score_text,race,"
          "sex,priors_count,juv_fel_count,juv_misd_count,juv_other_count,"
          "two_year_recid,age")
  rows = ["1,1,F,Low,Caucasian,Male,2,0,0,0,1,30",
          "-40,0,M,Low,Caucasian,Male,0,0,0,0,0,40",     # screened too late
          ",0,M,Low,Caucasian,Male,0,0,0,0,0,41",        # no screening date
          "0,-1,F,Low,Hispanic,Female,1,0,0,0,0,22",      # unknown outcome
          "0,0,O,Low,Asian,Female,1,0,0,0,0,23",          # traffic offence
          "0,0,M,N/A,Asian,Female,1,0,0,0,0,24",          # no score
          "3,0,M,High,Asian,Female,5,1,0,0,0,50",
          "-2,1,F,Medium,African-American,Male,7,0,1,0,1,19"]
  (tmp_path / insurance_data.COMPAS_FILE).write_text(
      "\n".join((cols, *rows)) + "\n")
  t = insurance_data.compas_table(str(tmp_path), 0.34, 3, 0)
  n = sum(len(part["y"]) for part in (t.train, t.test))
  assert n == 3

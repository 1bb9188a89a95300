"""Monge gap: >= 0, ~0 for OT maps, gradients, no retracing, runner resume."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import ot  # POT: test-only oracle

from algos.ot import monge_gap
from common import config as config_lib
from common.core import logging_utils


def _cloud(seed, n=64):
  return jax.random.normal(jax.random.PRNGKey(seed), (n, 2))


def test_gap_nonnegative_and_small_for_ot_maps():
  x = _cloud(0)
  eps = 1e-3   # fraction of the mean cost
  # Gradients of convex functions are OT maps for the squared cost.
  maps = {
      # Gradients of convex functions are OT maps for the squared cost.
      "shift": x + jnp.array([2.0, -1.0]),
      "scale": x @ jnp.diag(jnp.array([2.0, 0.5])),
      # A rotation by 90 degrees is not the gradient of a convex function.
      "rotation": x @ jnp.array([[0.0, -1.0], [1.0, 0.0]]),
  }
  rel = {}
  for name, mapped in maps.items():
    gap = monge_gap.monge_gap(x, mapped, eps)
    assert gap >= -1e-4, name
    # Relative to the map's own displacement cost E||x - T x||^2.
    rel[name] = gap / jnp.mean(jnp.sum((mapped - x)**2, -1))
  # The entropic gap of an OT map is small but not 0 (eps > 0, finite n).
  assert rel["shift"] < 0.05 and rel["scale"] < 0.05, rel
  assert rel["rotation"] > 0.3, rel   # far from optimal: a big gap


def test_exact_ot_cost_matches_pot():
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=(30, 2)), rng.normal(size=(30, 2)) + 1
  w = np.full(30, 1 / 30)
  np.testing.assert_allclose(monge_gap.exact_ot_cost(x, y),
                             ot.emd2(w, w, ot.dist(x, y)), rtol=1e-10)


def test_gaussian_true_map_metrics():
  from experiments.monge_gap import run  # pylint: disable=g-import-not-at-top
  sample, true_map = run.make_task("gaussian")
  x, y = sample(jax.random.PRNGKey(0), 400)
  m = monge_gap.map_metrics(true_map, x, y, true_map=true_map)
  assert m["map_error"] < 1e-8
  # The true map's cost on samples is close to the exact OT cost.
  assert abs(m["cost_gap"]) < 0.1 * m["ot_cost"]


def _loss_of_linear_map(a_flat, hparams, x, y, **kwargs):
  a = a_flat.reshape(2, 2)
  return monge_gap.map_loss(hparams, lambda z: z @ a, x, y, **kwargs)[0]


def test_gradient_matches_finite_differences():
  with jax.enable_x64(True):
    x = _cloud(1, 16).astype(jnp.float64)
    y = _cloud(2, 16).astype(jnp.float64) * 1.5 + 1.0
    hp = {"lambda_monge_gap": jnp.float64(1.0),
          "epsilon_fit": jnp.float64(0.5), "epsilon_gap": jnp.float64(0.5)}
    # Absolute epsilons: with relative_epsilon="mean", ott differentiates at
    # a fixed epsilon (its dependence on the points is not differentiated),
    # so finite differences would see an extra term.
    f = jax.jit(lambda a: _loss_of_linear_map(a, hp, x, y,
                                              relative_epsilon=None,
                                              threshold=1e-10))
    a0 = jnp.array([1.2, 0.3, -0.2, 0.8])
    grad = jax.grad(f)(a0)
    d = jnp.array([0.3, -0.5, 0.7, 0.1])
    eps = 1e-4
    fd = (f(a0 + eps * d) - f(a0 - eps * d)) / (2 * eps)
    np.testing.assert_allclose(float(jnp.vdot(grad, d)), float(fd),
                               rtol=1e-4)


def test_no_retrace_on_new_hparams():
  x, y = _cloud(3, 16), _cloud(4, 16) + 1.0

  @jax.jit
  @chex.assert_max_traces(n=1)
  def loss(a, hparams):
    return _loss_of_linear_map(a, hparams, x, y)

  a = jnp.eye(2).ravel()
  for lam, eps in ((0.0, 0.01), (1.0, 0.05), (10.0, 0.1)):
    hp = {"lambda_monge_gap": jnp.float32(lam),
          "epsilon_fit": jnp.float32(eps), "epsilon_gap": jnp.float32(eps)}
    assert jnp.isfinite(loss(a, hp))


def test_runner_resumes_from_checkpoint(tmp_path):
  from experiments.monge_gap import run  # pylint: disable=g-import-not-at-top
  config = config_lib.load_config("experiments/monge_gap/config.py")
  small = {"ot.steps": 4, "ot.batch_size": 8, "ot.num_test": 16,
           "ot.log_every": 2, "ot.checkpoint_every": 2,
           "ot.hidden": (8,)}
  cfg = config_lib.apply_overrides(config, small)
  sample, _ = run.make_task("gaussian")
  run.fit_mlp_map(cfg, str(tmp_path), 0, sample)
  cfg = config_lib.apply_overrides(config, dict(small, **{"ot.steps": 6}))
  run.fit_mlp_map(cfg, str(tmp_path), 0, sample)   # resumes at step 4
  steps = [r["step"] for r in logging_utils.read_jsonl(
      str(tmp_path / "metrics.jsonl"))]
  assert steps == [2, 4, 6]

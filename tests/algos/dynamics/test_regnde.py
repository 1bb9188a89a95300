"""RegNeuralDE: our Dormand-Prince 5(4) against diffrax, the regularisers'
gradients against finite differences, strength 0 = plain NODE loss."""

from __future__ import annotations

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from algos.dynamics import adaptive_rk
from algos.dynamics import node_models
from algos.dynamics import regnde
from common.core import method as method_lib

_A = jnp.array([[-0.1, 2.0], [-2.0, -0.1]])
_Y0 = jnp.array([[2.0, 0.0], [1.0, 0.5]])


def _field(t, y):
  return (y ** 3) @ _A.T + 0.1 * jnp.sin(t)


def test_solver_matches_diffrax_dopri5_steps_and_solution():
  # PI control (I control differs only in the coefficients).
  pcoeff, icoeff = 0.4, 0.3
  tol = adaptive_rk.Tolerances(rtol=1e-5, atol=1e-5, pcoeff=pcoeff,
                               icoeff=icoeff)
  ref = jax.jit(lambda y: diffrax.diffeqsolve(
      diffrax.ODETerm(lambda t, y, a: _field(t, y)), diffrax.Dopri5(), 0.0,
      3.0, 0.05, y, stepsize_controller=diffrax.PIDController(
          rtol=1e-5, atol=1e-5, pcoeff=pcoeff, icoeff=icoeff),
      max_steps=256))(_Y0)
  for differentiable in (False, True):
    y1, st = jax.jit(lambda y, d=differentiable: adaptive_rk.solve(
        _field, y, 0.0, 3.0, tol, dt0=0.05, max_steps=256,
        differentiable=d))(_Y0)
    assert int(st.accepted) == int(ref.stats["num_accepted_steps"])
    assert int(st.rejected) == int(ref.stats["num_rejected_steps"])
    assert int(st.nfe) == 1 + 6 * int(ref.stats["num_steps"])
    assert bool(st.finished)
    np.testing.assert_allclose(y1, ref.ys[-1], atol=2e-5)


def _tiny_loss(w, tol, remat=False):
  y0 = jnp.array([[1.0, 0.5], [0.3, -0.2]], w.dtype)
  f = lambda t, y: jnp.tanh(y @ w)
  y1, st = adaptive_rk.solve(f, y0, 0.0, 1.0, tol, dt0=0.05, max_steps=32,
                             chunk=4, remat=remat)
  return jnp.sum(y1 ** 2) + st.error_sum + st.stiff_sum + st.stiff_max


def test_regulariser_gradients_match_finite_differences():
  # Loose tolerances: every step accepted and grown by factormax, so the
  # step sequence (which carries no gradient) does not move with w, and
  # the whole discretised loss is a smooth function of w.
  with jax.enable_x64(True):
    w = jnp.array([[0.5, -1.0], [1.2, 0.3]], jnp.float64)
    tol = adaptive_rk.Tolerances(rtol=1e3, atol=1e3)
    loss = jax.jit(_tiny_loss, static_argnums=1)
    grad = jax.jit(jax.grad(_tiny_loss), static_argnums=1)(w, tol)
    eps = 1e-6
    fd = np.zeros((2, 2))
    for i in range(2):
      for j in range(2):
        fd[i, j] = (loss(w.at[i, j].add(eps), tol)
                    - loss(w.at[i, j].add(-eps), tol)) / (2 * eps)
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-6)
    remat = jax.jit(jax.grad(_tiny_loss), static_argnums=(1, 2))(w, tol, True)
    np.testing.assert_allclose(remat, grad, rtol=1e-9)


@pytest.mark.slow
def test_solution_gradient_equals_diffrax_discretise_then_optimise():
  y0 = jnp.array([[1.0, 0.5], [0.3, -0.2]])
  w = jnp.array([[0.5, -1.0], [1.2, 0.3]])
  tol = adaptive_rk.Tolerances(rtol=1e-6, atol=1e-6)

  def ours(w):
    return jnp.sum(adaptive_rk.solve(lambda t, y: jnp.tanh(y @ w), y0, 0.0,
                                     1.0, tol, dt0=0.05, max_steps=64)[0] ** 2)

  def ref(w):
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(lambda t, y, a: jnp.tanh(y @ w)), diffrax.Dopri5(),
        0.0, 1.0, 0.05, y0, max_steps=64,
        stepsize_controller=diffrax.PIDController(rtol=1e-6, atol=1e-6))
    return jnp.sum(sol.ys[-1] ** 2)
  np.testing.assert_allclose(jax.grad(ours)(w), jax.grad(ref)(w), rtol=1e-4,
                             atol=1e-6)


def _ctx(model, x):
  run = method_lib.RunInfo(num_examples=64, num_classes=3, steps_per_epoch=4,
                           num_epochs=2, total_steps=8, global_batch_size=8)
  return method_lib.StepContext(
      model=model, run=run, step=jnp.asarray(0), inputs=x, model_state={},
      trainable=None, rng_model=jax.random.PRNGKey(1), preprocess=None,
      normalize=None)


def test_strength_zero_is_the_plain_node_loss_and_weights_add_regularisers():
  # The loss with both weights 0 is the task loss alone (the plain NODE
  # arm); weights add exactly lambda * R. Traced weights: one compilation.
  model = node_models.node_classifier(3, hidden=8, rtol=1e-4, atol=1e-4,
                                      max_steps=16, chunk=4)
  x = jax.random.normal(jax.random.PRNGKey(0), (8, 2, 2, 1))
  batch = {"label": jnp.arange(8) % 3, "mask": jnp.ones(8, bool)}
  params = model.init(jax.random.PRNGKey(0), x)["params"]
  ctx = _ctx(model, x)
  method = regnde.make({})
  state = regnde.init(None, None)
  run = ctx.run

  @jax.jit
  def loss_hp(hp, p):
    return method.apply(hp, ctx, p, state, batch, None)

  def loss(cfg, p=params):   # one compilation: the weights are traced
    return loss_hp(jax.tree.map(jnp.float32, regnde.hparams(cfg, run)), p)

  value, aux = loss({})
  m = aux.metrics
  assert float(m["task_loss"]) == float(value)
  assert float(m["reg_error"]) > 0 and float(m["reg_stiff"]) > 0
  assert float(aux.method_state["nfe_sum"]) == float(m["nfe"]) > 0
  value_e, aux_e = loss({"lambda_error": 100.0, "lambda_error_final": 10.0})
  np.testing.assert_allclose(value_e, value + 100.0 * m["reg_error"],
                             rtol=1e-5)
  value_s, _ = loss({"lambda_stiff": 0.1})
  np.testing.assert_allclose(value_s, value + 0.1 * m["reg_stiff"],
                             rtol=1e-5)
  assert float(aux_e.metrics["lambda_error"]) == 100.0
  hp = jax.tree.map(jnp.float32, regnde.hparams(
      {"lambda_error": 100.0, "lambda_stiff": 0.1}, run))
  grads = jax.jit(jax.grad(lambda p: loss_hp(hp, p)[0]))(params)
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))


def test_error_weight_decays_exponentially_from_lambda_0_to_lambda_1():
  w = lambda e: float(regnde.error_weight(jnp.float32(100.0),
                                          jnp.float32(10.0),
                                          jnp.float32(e), jnp.float32(4.0)))
  np.testing.assert_allclose([w(0), w(2), w(4)], [100.0, 31.6228, 10.0],
                             rtol=1e-4)
  assert float(regnde.error_weight(jnp.float32(0.0), jnp.float32(10.0),
                                   jnp.float32(1.0), jnp.float32(4.0))) == 0.0


def test_spiral_generator_matches_the_adaptive_solver():
  import ml_collections as mlc  # pylint: disable=g-import-not-at-top
  from experiments.regnde import tasks  # pylint: disable=g-import-not-at-top
  config = mlc.ConfigDict({"data": {"name": "spiral_series", "kwargs": {
      "noise": 0.0, "num_times": 5}}})
  gen = tasks.spiral_series(config)
  batch = jax.jit(lambda k: gen.sample(k, 4))(jax.random.PRNGKey(0))
  ys, _ = jax.jit(lambda y: adaptive_rk.solve_at(
      lambda t, y: tasks.spiral_field(y), y, jnp.linspace(0.0, 0.5, 5),
      adaptive_rk.Tolerances(1e-7, 1e-7), differentiable=False))(batch["y0"])
  np.testing.assert_allclose(jnp.moveaxis(ys, 0, 1), batch["target"],
                             atol=1e-4)

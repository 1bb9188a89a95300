"""The W2 neural dual on the shared step equals ott-jax's own step."""

from __future__ import annotations

import chex
import jax
import numpy as np
import optax
from ott.neural.methods import neuraldual

from algos.ot import icnn_dual
from common import config as config_lib
from common.core import train_step as train_step_lib
from common.eval import evaluators
from experiments.monge_gap import tasks
from common.protocols import build


def _config(**overrides):
  config = config_lib.load_config("experiments/monge_gap/config.py:icnn")
  base = {"model.kwargs.dim_hidden": (8, 8), "train.batch_size": 16,
          "train.steps": 3, "data.kwargs.num_test": 32}
  base.update(overrides)
  return config_lib.apply_overrides(config, base)


def test_steps_and_map_equal_ott_w2_neural_dual():
  """Three steps from the same parameters and batches, without the
  positive-weight projection (so ott's penalty and clipping of f are
  exercised too), then the predicted map against ott's grad f."""
  config = _config(**{"model.kwargs.pos_weights": False})
  s = build.setup(config)
  state = s.init_state()
  # Host copies: the train step donates (deletes) the state's buffers.
  params = jax.tree.map(np.asarray, jax.device_get(state.params))
  net = icnn_dual.potential_net(s.model, 2)
  adam = optax.adam(1e-3, b1=0.5, b2=0.5)
  solver = neuraldual.W2NeuralDual(
      2, neural_f=net, neural_g=net, optimizer_f=adam, optimizer_g=adam,
      num_train_iters=0, pos_weights=False, beta=1.0,
      conjugate_solver=icnn_dual.conjugate.FenchelConjugateLBFGS(max_iter=5))
  state_f = solver.state_f.replace(params=params["f"],
                                   opt_state=adam.init(params["f"]))
  state_g = solver.state_g.replace(params=params["g"],
                                   opt_state=adam.init(params["g"]))
  for _ in range(3):
    batch = s.parts.sample(train_step_lib.procedural_key(state.rng,
                                                         state.step))
    state, metrics, _ = s.train_step(state, {}, s.hparams)
    state_f, state_g, loss, _, _, w2 = solver.train_step_parallel(
        state_f, state_g, {"source": batch["x"], "target": batch["y"]})
    # ott clips f after each step, in its loop.
    clip = solver._clip_weights_icnn  # pylint: disable=protected-access
    state_f = state_f.replace(params=clip(dict(state_f.params)))
    np.testing.assert_allclose(metrics["loss"], loss, rtol=1e-5)
    np.testing.assert_allclose(metrics["method/w2_dist"], w2, rtol=1e-5)
  chex.assert_trees_all_close(state.params, {"f": state_f.params,
                                             "g": state_g.params},
                              rtol=1e-4, atol=1e-6)
  kernels = [p["kernel"] for k, p in state.params["f"].items()
             if k.startswith("w_z")]
  assert all(float(k.min()) >= 0.0 for k in kernels)
  test = tasks.held_out(config)
  mapped = evaluators.predict(s, state, test, ("mapped",))["mapped"]
  ott_map = state_f.potential_gradient_fn(state_f.params)(test["x"])
  np.testing.assert_allclose(mapped, ott_map, rtol=1e-4, atol=1e-5)


def test_gaussian_init_is_the_bures_map():
  """The quadratic term of the Gaussian-initialised f has the gradient
  `x -> Q Q^T x + b`, the Bures map between Gaussian fits of generator
  samples: close to the closed-form OT map of the Gaussian task."""
  config = _config(**{"model.kwargs.gaussian_init": True,
                      "model.kwargs.pos_weights": False,
                      "method.w2_neural_dual.gaussian_init_samples": 4096})
  s = build.setup(config)
  pos_def = jax.device_get(s.init_state().params["f"]["pos_def_potentials"])
  q, b = pos_def["quad_kernel"][0], pos_def["lin_kernel"][:, 0]
  sample, true_map = tasks.make_task("gaussian")
  x, _ = sample(jax.random.PRNGKey(5), 400)
  bures = np.asarray(x) @ q @ q.T + b
  error = np.mean(np.sum((bures - np.asarray(true_map(x))) ** 2, -1))
  identity = np.mean(np.sum((np.asarray(x - true_map(x))) ** 2, -1))
  assert error < 0.01 * identity, (error, identity)

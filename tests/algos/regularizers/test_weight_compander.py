"""Weight compander: compander identities, gradients, mix=0 = baseline,
learnable hyperparameters, path selection, no retrace."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from algos.baselines import cross_entropy
from algos.regularizers import weight_compander as wc_lib
from common import models
from common.core import method as method_lib

V = jnp.linspace(-3.0, 3.0, 13)


@pytest.mark.parametrize("form", wc_lib.FORMS)
def test_compander_is_odd_bounded_steep_at_zero_and_mix_zero_is_identity(
    form):
  @jax.jit
  def f(v, mix):
    w = wc_lib.wc(v, 0.5, 2.0, mix, form)
    slope0 = jax.grad(lambda x: wc_lib.compand(x, 0.5, 2.0, form))(0.0)
    return w, wc_lib.wc(-v, 0.5, 2.0, mix, form), slope0
  w, w_neg, slope0 = f(V, 1.0)
  np.testing.assert_allclose(w_neg, -w, atol=1e-7)           # odd
  assert np.all(np.abs(w) <= 0.5)                            # bounded
  assert np.all(np.diff(np.asarray(w)) >= 0)                 # monotone
  np.testing.assert_allclose(slope0, 2.0, rtol=1e-6)         # gain at 0
  np.testing.assert_array_equal(f(V, 0.0)[0], V)             # mix 0 = id
  # Large bound, unit gain: the identity in the limit.
  np.testing.assert_allclose(wc_lib.compand(V, 1e4, 1.0, form), V,
                             rtol=1e-4)
  check_grads(jax.jit(lambda v, c, g: wc_lib.compand(v, c, g, form)),
              (V[4:9], 0.7, 1.5), order=1, modes=("rev",), atol=1e-2,
              rtol=1e-2)


@functools.cache
def _setup():
  model = models.get_model("mlp", num_classes=3, hidden_sizes=(4,))
  x = jnp.asarray(np.random.default_rng(0).normal(size=(6, 2, 2, 1)),
                  jnp.float32)
  params = jax.jit(lambda k: model.init(k, x, train=False))(
      jax.random.PRNGKey(0))["params"]
  batch = {"label": jnp.asarray([0, 1, 2, 0, 1, 2], jnp.int32),
           "mask": jnp.ones((6,), bool)}
  ctx = method_lib.StepContext(
      model=model, run=None, step=jnp.int32(0), inputs=x, model_state={},
      trainable=None, rng_model=jax.random.PRNGKey(1), preprocess=None,
      normalize=None)
  return model, params, batch, ctx


def _hp(**kw):
  hp = dict(bound=3.0, gain=1.5, mix=1.0, label_smoothing=0.0)
  hp.update(kw)
  return {k: jnp.float32(v) for k, v in hp.items()}


def test_mix_zero_equals_cross_entropy_and_learnable_init_equals_fixed():
  model, params, batch, ctx = _setup()
  fixed = wc_lib.make_method({})
  learned = wc_lib.make_method({"learnable": True})
  init_ctx = method_lib.InitContext(None, params, {}, {}, model)
  out = learned.init(None, init_ctx)
  assert sorted(out.params[wc_lib.HYPER_KEY]) == ["dense0/kernel",
                                                  "head/kernel"]

  @chex.assert_max_traces(n=1)
  def losses(hp, p_fixed, p_learned):
    ce = cross_entropy.loss(hp, {}, ctx.forward(p_fixed)[0], batch, p_fixed,
                            None)[0]
    learned_loss = lambda p: learned.apply(hp, ctx, p, {}, batch, None)[0]
    value, grads = jax.value_and_grad(learned_loss)(p_learned)
    return (ce, fixed.apply(hp, ctx, p_fixed, {}, batch, None)[0], value,
            grads[wc_lib.HYPER_KEY]["dense0/kernel"])
  losses = jax.jit(losses)
  ce, off_fixed, off_learned, _ = losses(_hp(mix=0.0), params, out.params)
  np.testing.assert_allclose([off_fixed, off_learned], [ce, ce], rtol=1e-6)
  _, on_fixed, on_learned, g = losses(_hp(), params, out.params)  # no retrace
  np.testing.assert_allclose(on_fixed, on_learned, rtol=1e-6)
  assert abs(float(on_fixed) - float(ce)) > 1e-4
  # The learnable factors get gradients.
  assert abs(float(g["log_bound"])) + abs(float(g["log_gain"])) > 0


def test_selection_by_path_and_bound_units():
  _, params, _, _ = _setup()
  eff = wc_lib.effective_params(
      params, _hp(bound=0.5), dict(include=r"kernel$", exclude="^head",
                                   form="tanh", bound_units="fan_in",
                                   learnable=False))
  np.testing.assert_array_equal(eff["head"]["kernel"],
                                params["head"]["kernel"])
  np.testing.assert_array_equal(eff["dense0"]["bias"],
                                params["dense0"]["bias"])
  fan_in = params["dense0"]["kernel"].shape[0]
  assert np.max(np.abs(eff["dense0"]["kernel"])) < 0.5 / np.sqrt(fan_in)
  with pytest.raises(ValueError, match="selects no parameter"):
    wc_lib.selected_paths(params, "nothing_matches")
  with pytest.raises(ValueError, match="form"):
    wc_lib.make_method({"form": "cubic"})

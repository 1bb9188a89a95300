"""CA calibration: the loss on hand inputs, identities, gradients, the
calibrator's input features, bad configs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from algos.calibration import ca_calib
from algos.calibration import scaling
from algos.calibration import views
from common import config as config_lib
from common.core import method as method_lib


def _conf(logits):
  return np.max(jax.nn.softmax(np.asarray(logits, np.float64)), axis=-1)


def test_ca_loss_on_hand_inputs():
  # Confidences 0.9, 0.6, 0.8 (two classes); the first two right.
  logits = jnp.log(jnp.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8]]))
  correct = jnp.array([True, True, False])
  mask = jnp.ones(3, bool)
  sq = np.array([0.1 ** 2, 0.4 ** 2, 0.8 ** 2])
  # Official weights: accuracy 2/3, so right rows weigh 1/3, wrong 2/3.
  w = np.array([1 / 3, 1 / 3, 2 / 3])
  np.testing.assert_allclose(ca_calib.ca_loss(logits, correct, mask),
                             np.sum(w * sq) / np.sum(w), rtol=1e-6)
  np.testing.assert_allclose(
      ca_calib.ca_loss(logits, correct, mask, balance=0.0), np.mean(sq),
      rtol=1e-6)
  bce = -np.array([np.log(0.9), np.log(0.6), np.log(1 - 0.8 + 1e-6)])
  np.testing.assert_allclose(
      ca_calib.ca_loss(logits, correct, mask, balance=0.0, form="bce"),
      np.mean(bce), rtol=1e-5)
  # A masked row counts nowhere (not in the accuracy either).
  masked = ca_calib.ca_loss(logits, correct, jnp.array([True, False, True]))
  w2 = np.array([0.5, 0.5])
  np.testing.assert_allclose(masked, np.sum(w2 * sq[[0, 2]]) / 1.0,
                             rtol=1e-6)


def test_batch_of_only_right_predictions_gives_zero_not_nan():
  logits = jnp.array([[2.0, 0.0], [0.0, 3.0]])
  loss = ca_calib.ca_loss(logits, jnp.array([True, True]), jnp.ones(2, bool))
  assert float(loss) == 0.0


def test_temperature_one_is_the_identity():
  feats = jax.random.uniform(jax.random.PRNGKey(0), (5, 12))
  params = ca_calib.init_calibrator(jax.random.PRNGKey(1), 12, 5)
  params["temperature"]["kernel"] = jnp.zeros((5, 1))
  params["temperature"]["bias"] = jnp.ones((1,))
  t = ca_calib.sample_temperature(params, feats, 0.1, 10.0)
  np.testing.assert_array_equal(t, np.ones(5))
  logits = jax.random.normal(jax.random.PRNGKey(2), (5, 7))
  np.testing.assert_array_equal(logits / t[:, None], logits)
  ts = scaling.temperature_scale({"temperature": jnp.ones((1,))}, logits)
  np.testing.assert_array_equal(ts, logits)
  vs = scaling.vector_scale(scaling.vector_init(None, 7), logits)
  np.testing.assert_array_equal(vs, logits)


def test_temperature_is_clipped_to_its_range():
  params = ca_calib.init_calibrator(jax.random.PRNGKey(1), 12, 5)
  params["temperature"]["kernel"] = jnp.zeros((5, 1))
  for bias, want in ((-3.0, 0.1), (50.0, 10.0)):
    params["temperature"]["bias"] = jnp.full((1,), bias)
    t = ca_calib.sample_temperature(params, jnp.ones((2, 12)), 0.1, 10.0)
    np.testing.assert_allclose(t, [want, want], rtol=1e-6)


def test_gradient_matches_finite_differences():
  with jax.enable_x64(True):
    k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(3), 4)
    feats = jax.random.uniform(k1, (16, 12), jnp.float64)
    logits = 3.0 * jax.random.normal(k2, (16, 5), jnp.float64)
    correct = jnp.arange(16) % 3 != 0
    params = jax.tree.map(lambda x: x.astype(jnp.float64),
                          ca_calib.init_calibrator(k3, 12, 5, t_bias=1.5))
    direction = jax.tree.map(
        lambda x: jax.random.normal(k4, x.shape, jnp.float64), params)
    mask = jnp.ones(16, bool)

    @jax.jit
    def check(p, d):
      """Directional derivatives: autodiff and central differences, for
      both loss forms (temperatures stay inside the smooth part of the
      clip)."""
      out = []
      for form in ca_calib.FORMS:
        def f(q, form=form):
          t = ca_calib.sample_temperature(q, feats, 0.1, 10.0)
          return ca_calib.ca_loss(logits / t[:, None], correct, mask, 1.0,
                                  form)
        auto = sum(jnp.vdot(g, v) for g, v in zip(
            jax.tree.leaves(jax.grad(f)(p)), jax.tree.leaves(d)))
        step = lambda e: jax.tree.map(lambda x, v: x + e * v, p, d)
        numeric = (f(step(1e-6)) - f(step(-1e-6))) / 2e-6
        out.append((auto, numeric))
      return out

    for auto, numeric in check(params, direction):
      np.testing.assert_allclose(auto, numeric, rtol=1e-6, atol=1e-9)


def test_consistency_features_read_the_original_top_k():
  rng = np.random.default_rng(0)
  view_logits = rng.normal(size=(4, 6, 9)).astype(np.float32)
  feats = np.asarray(ca_calib.consistency_features(view_logits, 4))
  assert feats.shape == (6, 12)
  top = np.argsort(-view_logits[0], axis=-1)[:, :4]
  for v in range(1, 4):
    p = np.asarray(jax.nn.softmax(view_logits[v]))
    np.testing.assert_allclose(feats[:, 4 * (v - 1):4 * v],
                               np.take_along_axis(p, top, -1), rtol=1e-6)


def test_transformed_views_keep_shape_and_range():
  x = jax.random.uniform(jax.random.PRNGKey(0), (3, 8, 8, 3))
  out = jax.jit(views.transformed_views)(jax.random.PRNGKey(1), x, 15.0,
                                         0.4, 0.1)
  assert out.shape == (4, 3, 8, 8, 3)
  np.testing.assert_array_equal(out[0], x)
  assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
  # Greyscale: equal channels; the rotation by 0 degrees is the image.
  np.testing.assert_allclose(out[2, ..., 0], out[2, ..., 2])
  np.testing.assert_allclose(jax.jit(views.rotate)(x, 0.0), x, atol=1e-5)


@pytest.mark.parametrize("bad, allowed", [
    (dict(form="focal"), "allowed"), (dict(tempreature=1.0), "unknown")])
def test_bad_config_is_a_one_line_error(bad, allowed):
  with pytest.raises(config_lib.ConfigError, match=allowed):
    method_lib.get_method("ca_calib", bad)

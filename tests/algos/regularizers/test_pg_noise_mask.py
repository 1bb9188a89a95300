"""pg_noise_mask: mask operations, the Beta log-density, the official loss's
gradients, masks=none = cross-entropy, the policy's own SGD step, no
retrace when the numbers change."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
from jax.test_util import check_grads
from scipy import stats

from algos.baselines import cross_entropy
from algos.regularizers import pg_noise_mask as pg
from common import models
from common.core import method as method_lib


def test_mask_image_upsamples_by_nearest_and_blurs_like_a_reflect_conv():
  rng = np.random.default_rng(0)
  mask = rng.uniform(size=(2, 9)).astype(np.float32)
  img = rng.normal(size=(1, 7, 6, 1)).astype(np.float32)
  a, b = np.array([0.5, 2.0, 3.0]), np.array([0.7, 1.0, 5.0])
  x = np.array([0.2, 0.5, 0.9])

  @jax.jit
  def ops(mask, img, x, a, b):
    return (pg.mask_image(mask, 3, 6, 6, 1, 1.0),     # kernel 1: no blur
            pg.gaussian_blur(img, 5, 1.5), pg.beta_log_prob(x, a, b))
  up, blurred, logp = ops(mask, img, x, a, b)
  np.testing.assert_array_equal(
      up[..., 0], np.repeat(np.repeat(mask.reshape(2, 3, 3), 2, 1), 2, 2))
  k = pg.gaussian_kernel1d(5, 1.5)
  np.testing.assert_allclose(k.sum(), 1.0, rtol=1e-6)
  padded = np.pad(img[0, :, :, 0], 2, mode="reflect")
  ref = np.array([[np.sum(np.outer(k, k) * padded[i:i + 5, j:j + 5])
                   for j in range(6)] for i in range(7)])
  np.testing.assert_allclose(blurred[0, :, :, 0], ref, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(logp, stats.beta.logpdf(x, a, b), rtol=1e-5,
                             atol=1e-6)


def test_official_loss_gradients_and_detached_weight():
  rng = np.random.default_rng(2)
  log_a, log_b = (jnp.asarray(rng.normal(size=(3, 4)) * 0.5, jnp.float32)
                  for _ in range(2))
  mask = jnp.asarray(rng.uniform(0.1, 0.9, size=(3, 4)), jnp.float32)
  f = jax.jit(lambda la, lb, ce: pg.pg_loss(la, lb, mask, ce)[0])
  check_grads(f, (log_a, log_b, jnp.float32(0.7)), order=1, modes=("rev",),
              atol=1e-2, rtol=1e-2)

  @jax.jit
  def grads(la, lb, ce):
    weight = jnp.mean(jax.nn.logsumexp(pg.beta_log_prob(
        mask, jnp.exp(la), jnp.exp(lb)), 1))
    g = jax.grad(lambda *a: pg.pg_loss(*a)[0], argnums=(0, 3))(la, lb, mask,
                                                                ce)
    gd = jax.grad(lambda la, ce: pg.pg_loss(la, lb, mask, ce,
                                            detach_weight=True)[0],
                  argnums=(0, 1))(la, ce)
    return weight, g, gd
  weight, g, gd = grads(log_a, log_b, jnp.float32(0.7))
  np.testing.assert_allclose(g[1], weight, rtol=1e-6)      # d/d ce = weight
  np.testing.assert_allclose(gd[1], 1.0, rtol=1e-6)        # detached: 1
  np.testing.assert_allclose(gd[0], g[0], rtol=1e-6)       # same policy grad


@functools.cache
def _setup():
  model = models.get_model("mlp", num_classes=3, hidden_sizes=(4,))
  x = jnp.asarray(np.random.default_rng(0).normal(size=(6, 8, 8, 1)),
                  jnp.float32)
  params = jax.jit(lambda k: model.init(k, x, train=False))(
      jax.random.PRNGKey(0))["params"]
  batch = {"label": jnp.asarray([0, 1, 2, 0, 1, 2], jnp.int32),
           "mask": jnp.ones((6,), bool)}
  run = method_lib.RunInfo(6, 3, 1, 10, 10, 6)
  ctx = method_lib.StepContext(
      model=model, run=run, step=jnp.int32(3), inputs=x, model_state={},
      trainable=jax.tree.map(lambda _: True, params),
      rng_model=jax.random.PRNGKey(1), preprocess=None, normalize=None)
  cfg = dict(grid=4, kernel=3, width=8, backbone="flatten")
  methods = {k: method_lib.get_method("pg_noise_mask", {**cfg, **v})
             for k, v in {"policy": {}, "none": {"masks": "none"}}.items()}
  init_ctx = method_lib.InitContext(run, params, {}, cfg, model,
                                    example_input=x[:1])
  state = jax.jit(lambda k: methods["policy"].init(k, init_ctx))(
      jax.random.PRNGKey(3))
  return ctx, params, batch, methods, state


def test_masks_none_is_cross_entropy_and_policy_steps_with_its_own_sgd():
  ctx, params, batch, methods, state = _setup()
  hp0 = method_lib.hparams_of(methods["policy"], {}, ctx.run)
  hp = lambda **kw: {k: jnp.float32(kw.get(k, v)) for k, v in hp0.items()}
  rng = jax.random.PRNGKey(4)

  def vg(method, hp, ms):
    loss_fn = lambda p: method.apply(hp, ctx, p, ms, batch, rng)
    return method.value_and_grad(hp, ctx, params, ms, batch, rng, loss_fn)

  @jax.jit
  @chex.assert_max_traces(n=1)
  def steps(hp):
    return vg(methods["none"], hp, {}), vg(methods["policy"], hp, state)

  (none, g_none), (pol, _) = steps(hp())

  @jax.jit
  def reference(params, policy):
    ce = jax.value_and_grad(lambda p: cross_entropy.loss(
        {"label_smoothing": 0.0}, {}, ctx.forward(p)[0], batch, p, None)[0])
    head_a = pg.MaskPolicy(4, 8, "flatten").apply({"params": policy},
                                                  ctx.inputs)[0]
    return ce(params), head_a
  (ce, g_ce), head_a = reference(params, state["policy"])
  np.testing.assert_allclose(none[0], ce, rtol=1e-6)
  chex.assert_trees_all_close(g_none, g_ce, rtol=1e-5, atol=1e-7)
  new = pol[1].method_state
  moved = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))),
                       new["policy"], state["policy"])
  assert max(jax.tree.leaves(moved)) > 0
  np.testing.assert_allclose(   # base: EMA towards the batch-mean head
      new["base_a"], 0.99 * state["base_a"] + 0.01 * jnp.mean(
          head_a, 0, keepdims=True), rtol=1e-5, atol=1e-6)
  # policy_lr = 0: the policy does not move; a new number, no retrace.
  (_, aux0), _ = steps(hp(policy_lr=0.0))[1]
  chex.assert_trees_all_equal(aux0.method_state["policy"], state["policy"])

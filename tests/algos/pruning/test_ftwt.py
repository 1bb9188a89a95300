"""FTWT: mass targets, mask loss, the train step's decoupling and tracing.

Math checks of the pure functions of `algos/pruning/ftwt.py` against a
NumPy transcription of the official rule, and one jitted step of the
method on `gated_cnn` (mask weight 0 = cross-entropy; the predictor gets
only the mask loss' gradient; a new `mu` does not recompile). Parity with
the official PyTorch code is in `test_ftwt_official_parity.py`.
"""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np

from algos.pruning import ftwt
from common.core import method as method_lib
from common.models import gated_cnn


def _np_targets(stats, mu, inclusive=False):
  """Row by row: sort descending, cumsum, keep cum <= mu + 1e-5."""
  out = np.zeros_like(stats)
  for i, row in enumerate(stats):
    p = row / row.sum()
    order = np.argsort(-p)
    cum = np.cumsum(p[order])
    if mu >= 1:
      keep = p > 1e-5
    elif inclusive:
      keep = np.zeros(len(p), bool)
      keep[order] = (cum - p[order]) < mu - 1e-5
    else:
      keep = np.zeros(len(p), bool)
      keep[order] = cum - mu <= 1e-5
    out[i] = keep
  return out


def test_mass_targets_match_the_sorted_cumulative_rule():
  rng = np.random.default_rng(0)
  stats = rng.exponential(size=(6, 11)).astype(np.float32)
  stats[0, :4] = 0.0                       # dead channels
  stats[1] = 0.0                           # a dead row keeps everything
  fn = ftwt.mass_targets
  for mu in (0.3, 0.8, 0.95, 1.0):
    for inclusive in (False, True):
      got = np.asarray(fn(stats, jnp.float32(mu), inclusive=inclusive))
      want = _np_targets(stats[2:], mu, inclusive)
      np.testing.assert_array_equal(got[2:], want)
      assert got[1].all()
      kept = stats[0][got[0] > 0].sum() / stats[0].sum()
      assert kept <= mu + 1e-5 or mu >= 1 or inclusive
      if inclusive and mu < 1:                # smallest set reaching mu
        assert kept >= mu - 1e-5
  # mu = 1 drops exactly the zero channels
  got = np.asarray(fn(stats, jnp.float32(1.0)))
  np.testing.assert_array_equal(got[0], stats[0] > 0)


def test_uniform_targets_drop_the_weakest_fraction():
  stats = np.array([[3.0, 1.0, 0.0, 2.0, 5.0]], np.float32)
  got = np.asarray(ftwt.uniform_targets(jnp.asarray(stats), 0.4))
  np.testing.assert_array_equal(got, [[1, 0, 0, 1, 1]])


def test_mask_loss_is_the_layer_mean_of_channel_summed_bce():
  rng = np.random.default_rng(1)
  z = [rng.normal(size=(4, 5)), rng.normal(size=(4, 3))]
  t = [(rng.random((4, 5)) > 0.5) * 1.0, (rng.random((4, 3)) > 0.5) * 1.0]
  bce = [-(tt * np.log(1 / (1 + np.exp(-zz)))
           + (1 - tt) * np.log(1 - 1 / (1 + np.exp(-zz))))
         for zz, tt in zip(z, t)]
  want = np.mean([b.sum(1).mean() for b in bce])
  got = ftwt.mask_loss([jnp.asarray(a, jnp.float32) for a in z],
                       [jnp.asarray(a, jnp.float32) for a in t])
  np.testing.assert_allclose(got, want, rtol=1e-5)
  valid = jnp.array([True, True, False, False])
  got_v = ftwt.mask_loss([jnp.asarray(a[:2], jnp.float32) for a in z],
                         [jnp.asarray(a[:2], jnp.float32) for a in t])
  got_m = ftwt.mask_loss([jnp.asarray(a, jnp.float32) for a in z],
                         [jnp.asarray(a, jnp.float32) for a in t], valid)
  np.testing.assert_allclose(got_m, got_v, rtol=1e-6)


# ------------------------------------------------------- one method step
_MODEL = gated_cnn.GatedCNN(num_classes=3, widths=(4, 6), pool_after=(0,))
_RUN = method_lib.RunInfo(num_examples=8, num_classes=3, steps_per_epoch=1,
                          num_epochs=10, total_steps=10, global_batch_size=8)


@functools.cache
def _setup():
  x = jax.random.normal(jax.random.key(0), (8, 8, 8, 2))
  variables = _MODEL.init(jax.random.key(1), x, train=False)
  batch = {"label": jnp.arange(8) % 3, "mask": jnp.ones(8, bool)}
  method = ftwt.make({})

  def loss_fn(params, hp, step):
    ctx = method_lib.StepContext(
        model=_MODEL, run=_RUN, step=step, inputs=x,
        model_state={"batch_stats": variables["batch_stats"]},
        trainable=None, rng_model=jax.random.key(2), preprocess=None,
        normalize=None)
    loss, aux = method.apply(hp, ctx, params, {}, batch, None)
    return loss, aux.metrics

  grad = jax.jit(jax.value_and_grad(chex.assert_max_traces(loss_fn, n=1),
                                    has_aux=True))
  return variables["params"], grad


def _hp(mu=0.9, weight=10.0, cooldown=0.5):
  return {"mu": jnp.float32(mu), "mask_weight": jnp.float32(weight),
          "cooldown": jnp.float32(cooldown)}


def test_step_decouples_losses_and_does_not_retrace():
  params, grad = _setup()
  (loss0, m0), g0 = grad(params, _hp(weight=0.0), jnp.int32(0))
  np.testing.assert_allclose(loss0, m0["ce"], rtol=1e-6)   # weight 0 = CE
  for k in ("mask0", "mask1"):                            # no predictor grad
    assert all(float(jnp.abs(v).max()) == 0 for v in jax.tree.leaves(g0[k]))
  (loss1, m1), g1 = grad(params, _hp(mu=0.7), jnp.int32(0))
  np.testing.assert_allclose(loss1, m1["ce"] + 10 * m1["mask_loss"],
                             rtol=1e-5)
  # the mask loss reaches the predictors only: backbone grads unchanged
  for k in ("conv0", "conv1", "bn0", "bn1", "head"):
    chex.assert_trees_all_close(g0[k], g1[k], rtol=1e-6, atol=1e-7)
  assert float(jnp.abs(g1["mask1"]["dense"]["kernel"]).max()) > 0
  # after the cooldown (step >= 0.5 * 10) the mask loss is off
  (loss2, m2), _ = grad(params, _hp(mu=0.7), jnp.int32(5))
  np.testing.assert_allclose(loss2, m2["ce"], rtol=1e-6)
  assert float(m2["mask_weight"]) == 0.0

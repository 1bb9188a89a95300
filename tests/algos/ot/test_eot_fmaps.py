"""EOT-fmaps: functional-map identities, SW (official p-th root vs ott-jax),
entropic refinement, p2p maps, gradients and traced hyperparameters."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import test_util as jtu
from ott.tools import sliced

from algos.geometry import laplace_beltrami as lb
from algos.ot import eot_fmaps
from algos.ot import eot_fmaps_net
from common.data import meshes_synthetic as ms


@pytest.fixture(scope="module")
def shape():
  verts, faces = ms.blob_template(np.random.default_rng(0), level=2)
  b = lb.laplacian_eigenbasis(verts, faces, 12)
  wks = lb.wave_kernel_signature(b["evals"], b["evecs"], b["mass"], 24)
  d = {k: jnp.asarray(b[k], jnp.float32)
       for k in ("evals", "evecs", "evecs_trans")}
  d["descriptors"] = jnp.asarray(wks, jnp.float32)
  return d, lb.geodesic_distances(verts, faces)


def _permuted(shape, perm):
  """The same shape with vertex j = old vertex perm[j]."""
  return {"evals": shape["evals"], "evecs": shape["evecs"][perm],
          "evecs_trans": shape["evecs_trans"][:, perm],
          "descriptors": shape["descriptors"][perm]}


def test_fmap_of_identical_shapes_is_identity(shape):
  s, _ = shape
  perm = np.random.default_rng(0).permutation(s["evecs"].shape[0])
  t = _permuted(s, perm)
  c = eot_fmaps.solve_fmap(s["descriptors"], t["descriptors"], s["evals"],
                           t["evals"], s["evecs_trans"], t["evecs_trans"])
  np.testing.assert_allclose(c, np.eye(12), atol=2e-3)
  terms = eot_fmaps.fmap_losses(c, c.T, s["evals"], t["evals"])
  for k in ("bij", "orth", "lap"):
    assert terms[k] < 1e-3, (k, terms[k])


def test_fmap_losses_hand_values():
  c = jnp.diag(jnp.array([2.0, 1.0]))
  evals = jnp.array([0.0, 1.0])
  t = eot_fmaps.fmap_losses(c, c, evals, evals)
  # C C - I = diag(3, 0): 9, twice (both directions, both orders).
  assert np.isclose(t["bij"], 18.0) and np.isclose(t["orth"], 18.0)
  assert np.isclose(t["lap"], 0.0)   # diagonal maps commute with Lambda
  off = jnp.array([[0.0, 1.0], [0.0, 0.0]])
  # (C Lx - Ly C)_{01} = 1 * 1 - 0 * 1 = 1 per direction.
  assert np.isclose(eot_fmaps.fmap_losses(off, off, evals, evals)["lap"], 2.0)


def test_sw_official_root_vs_ott_and_invariances():
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(64, 5)), jnp.float32)
  y = jnp.asarray(rng.normal(size=(64, 5)) * 1.5 + 0.3, jnp.float32)
  theta = eot_fmaps.random_directions(jax.random.PRNGKey(0), 50, 5)
  ours = eot_fmaps.sliced_wasserstein_p(x, y, theta, p=2.0)
  ott_value, _ = sliced.sliced_wasserstein(x, y, proj_fn=lambda z: z @ theta.T)
  # ott averages the 1-D squared costs: no root. The official loss roots it.
  np.testing.assert_allclose(ours ** 2, ott_value, rtol=1e-4)
  assert not np.isclose(ours, ott_value, rtol=1e-2)
  shift = jnp.array([1.0, -2.0, 0.5, 3.0, 0.0])
  np.testing.assert_allclose(
      eot_fmaps.sliced_wasserstein_p(x + shift, y + shift, theta), ours,
      rtol=1e-4)
  perm = rng.permutation(64)
  np.testing.assert_allclose(
      eot_fmaps.sliced_wasserstein_p(x[perm], y, theta), ours, rtol=1e-5)
  assert eot_fmaps.sliced_wasserstein_p(x, x[perm], theta) < 1e-4
  # p = 1 on one direction is the mean absolute quantile difference.
  e = jnp.eye(5)[:1]
  np.testing.assert_allclose(
      eot_fmaps.sliced_wasserstein_p(x, y, e, p=1.0),
      np.mean(np.abs(np.sort(x[:, 0]) - np.sort(y[:, 0]))), rtol=1e-4)
  with pytest.raises(ValueError, match="same shape"):
    eot_fmaps.sliced_wasserstein_p(x, y[:10], theta)


def test_entropic_refinement_recovers_permutation():
  rng = np.random.default_rng(1)
  fx = jnp.asarray(rng.normal(size=(80, 8)), jnp.float32)
  perm = rng.permutation(80)
  fy = fx[perm]                      # y_j = x_{perm[j]}
  p_xy, p_yx = eot_fmaps.entropic_correspondence(fx, fy)
  np.testing.assert_array_equal(np.argmax(p_yx, axis=1), perm)
  np.testing.assert_array_equal(np.argmax(p_xy, axis=1), np.argsort(perm))
  np.testing.assert_allclose(p_xy.sum(1), 1.0, rtol=1e-5)
  np.testing.assert_allclose(p_yx.sum(1), 1.0, rtol=1e-5)


def test_p2p_and_geodesic_error_on_permuted_copy(shape):
  s, geo = shape
  n = s["evecs"].shape[0]
  perm = np.random.default_rng(3).permutation(n)
  t = _permuted(s, perm)
  p2p = eot_fmaps.p2p_from_features(s["descriptors"], t["descriptors"],
                                    s["evecs"], t["evecs"], t["evecs_trans"])
  np.testing.assert_array_equal(p2p, perm)     # y_j -> x_{perm[j]}
  corr_x, corr_y = np.arange(n), np.argsort(perm)
  assert eot_fmaps.geodesic_error(jnp.asarray(geo), corr_x, corr_y, p2p) == 0
  wrong = jnp.roll(p2p, 1)
  assert eot_fmaps.geodesic_error(jnp.asarray(geo), corr_x, corr_y, wrong) > 0


def test_gradients_match_finite_differences(shape):
  s, _ = shape
  rng = np.random.default_rng(2)
  fx = jnp.asarray(rng.normal(size=(s["evecs"].shape[0], 6)), jnp.float32)
  fy = fx + 0.1 * jnp.asarray(rng.normal(size=fx.shape), jnp.float32)
  theta = eot_fmaps.random_directions(jax.random.PRNGKey(1), 16, 6)

  def f(a, b):
    c = eot_fmaps.solve_fmap(a, b, s["evals"], s["evals"], s["evecs_trans"],
                             s["evecs_trans"])
    p = eot_fmaps.soft_correspondence(a, b, 0.5)
    return (eot_fmaps.fmap_losses(c, c.T, s["evals"], s["evals"])["orth"]
            + eot_fmaps.sliced_wasserstein_p(a, p @ b, theta))

  jtu.check_grads(f, (fx, fy), order=1, modes=("rev",), atol=5e-2,
                  rtol=5e-2, eps=1e-2)


def test_pair_loss_traced_hparams_do_not_retrace(shape):
  s, _ = shape
  t = _permuted(s, np.random.default_rng(4).permutation(s["evecs"].shape[0]))
  net = eot_fmaps_net.SpectralDiffusionNet(width=8, out_dim=8, num_blocks=1)
  params = net.init(jax.random.PRNGKey(0), s["descriptors"], s["evals"],
                    s["evecs"], s["evecs_trans"])["params"]

  @jax.jit
  @chex.assert_max_traces(n=1)
  def loss(params, hp, rng):
    return eot_fmaps_net.pair_loss(params, hp, s, t, rng, net=net,
                                   num_projections=16)

  key = jax.random.PRNGKey(0)
  full, terms = loss(params, eot_fmaps_net.make_hparams(), key)
  no_sw, _ = loss(params, eot_fmaps_net.make_hparams(w_sw=0.0), key)
  np.testing.assert_allclose(full - no_sw, 100.0 * terms["sw"], rtol=1e-4)
  loss(params, eot_fmaps_net.make_hparams(tau=0.2, lmbda=10.0), key)
  grads = jax.grad(lambda p: loss(p, eot_fmaps_net.make_hparams(), key)[0])(
      params)
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
  # Diffusion times start at 0 but still receive gradient through |t|'s
  # subgradient only if non-zero; the MLP weights always do.
  assert np.any(grads["last"]["kernel"] != 0)
  with pytest.raises(ValueError, match="allowed"):
    eot_fmaps_net.make_hparams(w_foo=1.0)


def test_refinement_objective_runs_and_is_finite(shape):
  s, _ = shape
  t = _permuted(s, np.random.default_rng(5).permutation(s["evecs"].shape[0]))
  net = eot_fmaps_net.SpectralDiffusionNet(width=8, out_dim=8, num_blocks=1)
  params = net.init(jax.random.PRNGKey(0), s["descriptors"], s["evals"],
                    s["evecs"], s["evecs_trans"])["params"]
  value, grads = jax.value_and_grad(
      lambda p: eot_fmaps_net.pair_loss(
          p, eot_fmaps_net.make_hparams(), s, t, jax.random.PRNGKey(1),
          net=net, num_projections=16, refine=True, sinkhorn_iters=3)[0])(
      params)
  assert np.isfinite(value)
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))

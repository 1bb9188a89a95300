"""EOT-fmaps: functional-map identities, SW (official p-th root vs ott-jax),
entropic refinement, p2p maps, gradients, traced hyperparameters, and the
test-time refinement of the `refine` protocol recovering a known
permutation."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import test_util as jtu
from ott.tools import sliced

from algos.geometry import laplace_beltrami as lb
from algos.geometry import mesh_pairs
from algos.ot import eot_fmaps
from algos.ot import eot_fmaps_net
from common import config as config_lib
from common.data import meshes_synthetic as ms
from common.protocols import build
from common.protocols import refine


@pytest.fixture(scope="module")
def shape():
  verts, faces = ms.blob_template(np.random.default_rng(0), level=2)
  d = {k: jnp.asarray(v) for k, v in mesh_pairs.spectral(
      verts, faces, 12, 16).items()}
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
  params = net.init(jax.random.PRNGKey(0), s)["params"]

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


def _tiny_config(**overrides):
  config = config_lib.load_config("experiments/eot_fmaps/config.py")
  return config_lib.apply_overrides(config, {
      "meshes.num_train_shapes": 2, "meshes.num_test_shapes": 2,
      "meshes.num_evecs": 12, "meshes.wks_count": 16,
      "model.kwargs.width": 16, "model.kwargs.out_dim": 16,
      "model.kwargs.num_blocks": 1, "method.eot_fmaps.num_projections": 32,
      **overrides})


def test_refinement_recovers_a_known_permutation(shape):
  """y is x with its vertices permuted by a known `perm`; the network sees
  one WKS channel only (first-layer weights of the others zeroed), so its
  features confuse vertices and the plain map misses a third of them.
  The refine protocol's eval step (15 steps of the train step on the
  pair's entropic-OT objective, Adam 1e-3, clip 1: the official recipe)
  recovers the permutation exactly; with 0 steps the map stays wrong."""
  s, _ = shape
  n = s["evecs"].shape[0]
  perm = np.random.default_rng(3).permutation(n)
  t = _permuted(s, perm)
  config = _tiny_config()
  setup = build.setup(config)
  net = setup.model
  params = net.init(jax.random.PRNGKey(0), s)["params"]
  keep = np.zeros((16, 1), np.float32)
  keep[11] = 1.0
  params["first"]["kernel"] = params["first"]["kernel"] * keep
  state = setup.init_state(params=params)
  pair = {"shapes": jax.device_put(
      {k: jnp.stack([s[k], t[k]])[None] for k in s},
      jax.sharding.NamedSharding(setup.mesh, jax.sharding.PartitionSpec(
          "data")))}
  plain = np.asarray(setup.eval_step(state, pair, setup.hparams,
                                     output_keys=("p2p",))["p2p"][0])
  assert np.mean(plain == perm) < 0.8     # y_j -> x_{perm[j]} when right
  refined_setup = refine.refining_setup(setup, config)
  refined = np.asarray(refined_setup.eval_step(
      state, pair, setup.hparams, output_keys=("p2p",))["p2p"][0])
  np.testing.assert_array_equal(refined, perm)
  # The trained state is untouched (each item refines a copy).
  again = np.asarray(setup.eval_step(state, pair, setup.hparams,
                                     output_keys=("p2p",))["p2p"][0])
  np.testing.assert_array_equal(again, plain)

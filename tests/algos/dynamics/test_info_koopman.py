"""info_koopman: the von Neumann entropy of known spectra, the InfoNCE term
on a known case and against the official PyTorch code, strength 0 = the
plain Koopman autoencoder's loss, gradient checks."""

from __future__ import annotations

import importlib.util
import os
import sys

import jax
import jax.numpy as jnp
from jax.test_util import check_grads
import numpy as np
import pytest
import scipy.linalg

from algos.dynamics import info_koopman as ik

OFFICIAL_ENV = "INFO_KOOPMAN_OFFICIAL"   # a checkout of the official repo
# Jitted once: eager op-by-op dispatch dominates these tiny shapes.
_entropy = jax.jit(ik.von_neumann_entropy)
_erank = jax.jit(ik.effective_rank)
_nce = jax.jit(ik.temporal_info_nce, static_argnums=1)


def _latents_with_covariance(spectrum):
  """`[1, N, m]` zero-mean latents whose unbiased covariance is diag."""
  m = len(spectrum)
  n = 16
  cols = scipy.linalg.hadamard(n)[:, 1:m + 1].astype(np.float64)  # +-1
  z = cols * np.sqrt(np.asarray(spectrum) * (n - 1) / n)
  return jnp.asarray(z[None], jnp.float32)


@pytest.mark.parametrize("spectrum", [
    (1.0, 1.0, 1.0, 1.0), (4.0, 2.0, 1.0, 1.0), (1.0, 0.0, 0.0, 0.0),
    (3.0, 1.0, 0.5, 0.25, 0.25, 2.0)])
def test_von_neumann_entropy_of_known_spectra(spectrum):
  p = np.asarray(spectrum) / np.sum(spectrum)
  want = -np.sum(p[p > 0] * np.log(p[p > 0]))
  z = _latents_with_covariance(spectrum)
  np.testing.assert_allclose(_entropy(z), want, atol=1e-5)
  # Roy-Vetterli effective rank: singular values ~ sqrt(eigenvalues).
  s = np.sqrt(np.asarray(spectrum))
  q = s[s > 0] / s.sum()
  np.testing.assert_allclose(_erank(z),
                             np.exp(-np.sum(q * np.log(q))), rtol=1e-5)


def test_entropy_gradient_is_finite_at_repeated_eigenvalues():
  z = _latents_with_covariance((1.0, 1.0, 1.0, 1.0))   # all equal: max S
  g = jax.jit(jax.grad(ik.von_neumann_entropy))(z)
  assert np.all(np.isfinite(g))
  np.testing.assert_allclose(g, 0.0, atol=1e-4)        # S is maximal here


def test_info_nce_on_a_known_case():
  # All latents parallel: every cosine is 1, so each anchor's loss is
  # -log(2k / (T - 1)) (2k positives among the T - 1 other states).
  t, k = 12, 3
  z = jnp.ones((2, t, 5))
  np.testing.assert_allclose(_nce(z, k, 0.1), -np.log(2 * k / (t - 1)),
                             rtol=1e-6)
  assert _nce(z[:, :6], k, 0.1) == 0.0   # T <= 2k


def test_zero_strength_is_the_plain_koopman_autoencoder_loss():
  """...and the least-squares forward is one step with the fitted K."""
  model = ik.KoopmanAE(latent_dim=4, hidden=(8,))
  x = jax.random.normal(jax.random.PRNGKey(0), (3, 9, 2))
  hp = dict(recon_weight=0.3, mi_weight=0.0, entropy_weight=0.0,
            mi_temperature=0.1)

  @jax.jit
  def run(x):
    params = model.init(jax.random.PRNGKey(1), x)["params"]
    loss, metrics = ik.koopman_loss(hp, model.apply({"params": params}, x),
                                    x, 3)
    # By hand: decode phi(x_0) K^k, k = 1..T, against x_k; reconstruct
    # x_0..x_{T-1} through phi and psi alone.
    v = {"params": params}
    z, zs = model.apply(v, x[:, 0], method="encode"), []
    for _ in range(8):
      z = z @ params["koopman"]
      zs.append(z)
    xk = model.apply(v, jnp.stack(zs, 1), 2, method="decode")
    xr = model.apply(v, model.apply(v, x[:, :8], method="encode"), 2,
                     method="decode")
    # The official operator: one step from every z_t with the batch's
    # ridge fit (`ridge_operator`).
    ls = model.apply(v, x, operator="least_squares", ridge=0.1)
    zt = model.apply(v, x, method="encode")
    koop = ik.ridge_operator(zt[:, :-1], zt[:, 1:], 0.1)
    one_step = model.apply(v, zt[:, :-1] @ koop, 2, method="decode")
    return (loss, metrics["pred_loss"], xk, xr, ls["koopman"], koop,
            ls["pred"], one_step)

  loss, pred_loss, xk, xr, *ls = map(np.asarray, run(x))
  np.testing.assert_allclose(ls[0], ls[1], rtol=1e-6)
  np.testing.assert_allclose(ls[2], ls[3], rtol=1e-5, atol=1e-6)
  x = np.asarray(x)
  pred = np.sum(np.mean((xk - x[:, 1:])**2, axis=(0, 2)))
  recon = np.sum(np.mean((xr - x[:, :8])**2, axis=(0, 2)))
  np.testing.assert_allclose(loss, pred + 0.3 * recon, rtol=1e-5)
  np.testing.assert_allclose(pred_loss, pred, rtol=1e-5)


def test_gradients_match_finite_differences():
  with jax.enable_x64(True):
    z = jax.random.normal(jax.random.PRNGKey(2), (2, 10, 4), jnp.float64)
    terms = jax.jit(lambda a: ik.von_neumann_entropy(a)
                    + ik.temporal_info_nce(a, 2, 0.5))
    check_grads(terms, (z,), order=1, modes=("rev",), atol=1e-5, rtol=1e-5)


def _official():
  root = os.environ.get(OFFICIAL_ENV, "")
  path = os.path.join(root, "model", "physical_simulation", "base.py")
  if not root or not os.path.exists(path):
    pytest.skip(f"set {OFFICIAL_ENV} to a checkout of "
                "Wenxuan52/InformationKoopman")
  torch = pytest.importorskip("torch")
  sys.path.insert(0, os.path.dirname(path))   # base.py imports `utils`
  try:
    spec = importlib.util.spec_from_file_location("ik_official_base", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
  finally:
    sys.path.remove(os.path.dirname(path))
  return torch, module.ROM_BASE


@pytest.mark.parametrize("k,temperature", [(3, 0.1), (2, 0.07)])
def test_terms_match_the_official_code(k, temperature):
  torch, rom = _official()
  z = np.random.default_rng(k).normal(size=(4, 16, 6)).astype(np.float64)
  zt = torch.tensor(z, requires_grad=True)
  nce_t = rom.info_nce(None, zt, k=k, temperature=temperature)
  ent_t = rom.von_neumann_entropy(None, zt, center=True)
  (nce_t + 0.3 * ent_t).backward()
  with jax.enable_x64(True):
    za = jnp.asarray(z)
    fn = lambda a: (ik.temporal_info_nce(a, k, temperature),
                    ik.von_neumann_entropy(a))
    nce, ent = jax.jit(fn)(za)
    grad = jax.jit(jax.grad(lambda a: fn(a)[0] + 0.3 * fn(a)[1]))(za)
  np.testing.assert_allclose(nce, nce_t.item(), rtol=1e-10)
  np.testing.assert_allclose(ent, ent_t.item(), rtol=1e-10)
  np.testing.assert_allclose(grad, zt.grad.numpy(), rtol=1e-7, atol=1e-10)


# ------------------------------------------------- the official operator
def _window_fit(z, z_next, ridge):
  """float64 numpy ridge fit of one window: C `[m, m]`."""
  m = z.shape[-1]
  return np.linalg.solve(z.T @ z + ridge * np.eye(m), z.T @ z_next)


def test_least_squares_operator_solves_the_ridge_normal_equations():
  rng = np.random.default_rng(0)
  cases = [rng.normal(size=(2, 3, t, m)) for t, m in [(6, 4), (3, 5)]]

  def fit(cases):    # both cases, values and gradients: one compilation
    loss = lambda a, b: jnp.sum(ik.ridge_operator(a, b, 0.1)**2)
    return [(ik.ridge_operator(z[:1], zn[:1], 0.1),
             ik.ridge_operator(z, zn, 0.3),
             jax.grad(loss, argnums=(0, 1))(z, zn)) for z, zn in cases]

  with jax.enable_x64(True):
    out = jax.tree.map(np.asarray, jax.jit(fit)(
        [tuple(map(jnp.asarray, c)) for c in cases]))
  for (z, zn), (k1, k, g) in zip(cases, out):   # [m, m] and [T, T] forms
    m = z.shape[-1]
    # One window: (Z^T Z + r I) K = Z^T Z'.
    np.testing.assert_allclose((z[0].T @ z[0] + 0.1 * np.eye(m)) @ k1,
                               z[0].T @ zn[0], atol=1e-10)
    # A batch: the mean of the windows' solutions (official .mean(dim=0)).
    np.testing.assert_allclose(
        k, np.mean([_window_fit(a, b, 0.3) for a, b in zip(z, zn)], 0),
        rtol=1e-10, atol=1e-12)
    # Detached, as the official `.detach()`: no gradient reaches z.
    assert not np.any(g[0]) and not np.any(g[1])


def test_test_time_operator_is_the_last_epochs_mean():
  state = {"koopman_sum": jnp.zeros((1, 1)), "koopman": jnp.eye(1),
           "koopman_last": jnp.eye(1)}
  seen = []
  for step in range(7):     # 3 steps per epoch; batch operator = step
    state = ik._record_operator(state, jnp.full((1, 1), float(step)),
                                jnp.asarray(step), 3)
    seen.append(float(state["koopman"][0, 0]))
  # First epoch: running mean; then the mean of epoch 1 (steps 3..5) only
  # once it is complete.
  assert seen == [0.0, 0.5, 1.0, 1.0, 1.0, 4.0, 4.0]
  assert float(state["koopman_last"][0, 0]) == 6.0


def test_bad_operator_is_a_config_error():
  from common import config as config_lib
  with pytest.raises(config_lib.ConfigError, match="least_squares"):
    ik.make({"operator": "lstsq"})


def test_operator_matches_the_official_code():
  torch, rom = _official()
  rng = np.random.default_rng(0)
  for t, m in [(16, 8), (6, 9)]:
    z, zn = rng.normal(size=(2, 4, t, m))
    pinv = rom.batch_pinv(torch.tensor(z), I_factor=1e-1)
    want = torch.bmm(pinv, torch.tensor(zn)).mean(dim=0).numpy()
    with jax.enable_x64(True):
      got = jax.jit(ik.ridge_operator)(jnp.asarray(z), jnp.asarray(zn), 0.1)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)

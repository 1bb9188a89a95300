"""LDR-KL, ALDR-KL and the baselines against the official `loss.py`.

The official code (Optimization-AI/ICML2023_LDR) is not a package and is
not in this repo: the test imports `loss.py` from the checkout named by
`REGJAX_OFFICIAL_LDR_DIR` and skips without it:

    git clone https://github.com/Optimization-AI/ICML2023_LDR /tmp/ldr
    REGJAX_OFFICIAL_LDR_DIR=/tmp/ldr JAX_PLATFORMS=cpu \\
        python -m pytest -q tests/algos/noisy_labels/test_ldr_official_parity.py

Values and gradients with respect to the logits are compared (float64 on
both sides, to 1e-6). The official losses call `.cuda()`; on a CPU-only
torch that call is replaced by the identity for the duration of a test.
"""

from __future__ import annotations

import importlib.util
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from algos.noisy_labels import ldr
from algos.noisy_labels import robust_losses as rl

ROOT = os.environ.get("REGJAX_OFFICIAL_LDR_DIR", "")
_LOSS_PY = os.path.join(ROOT, "loss.py")
pytestmark = pytest.mark.skipif(
    not os.path.isfile(_LOSS_PY),
    reason="official LDR code: set REGJAX_OFFICIAL_LDR_DIR to a checkout "
           "of Optimization-AI/ICML2023_LDR")
torch = pytest.importorskip("torch")

B, K, N = 7, 6, 20
TOL = dict(rtol=1e-6, atol=1e-6)


@pytest.fixture(scope="module")
def official():
  spec = importlib.util.spec_from_file_location("ldr_official_loss", _LOSS_PY)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.fixture(autouse=True)
def cpu_cuda(monkeypatch):
  monkeypatch.setattr(torch.Tensor, "cuda", lambda self, *a, **k: self)


@pytest.fixture(autouse=True)
def float64():
  with jax.enable_x64(True):
    yield


def _data(seed=0, scale=3.0):
  rng = np.random.default_rng(seed)
  return (scale * rng.standard_normal((B, K)),
          rng.integers(0, K, B))


def _official(loss_module, logits, labels, *extra):
  z = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
  onehot = torch.nn.functional.one_hot(torch.tensor(labels), K).double()
  value = loss_module(z, onehot, *extra)
  value.backward()
  return value.item(), z.grad.numpy()


def _ours(fn, logits, labels):
  return jax.value_and_grad(lambda z: jnp.mean(fn(z, jnp.asarray(labels))))(
      jnp.asarray(logits))


CASES = {   # name -> (official constructor, our per-example function)
    "cs": (lambda o: o.CSLoss(threshold=1.0),
           lambda z, y: rl.cs(z, y, 1.0)),
    "ww": (lambda o: o.WWLoss(threshold=0.1),
           lambda z, y: rl.ww(z, y, 0.1)),
    "ce_v1": (lambda o: o.CELoss_v1(),
              lambda z, y: rl.ce(z, y) - jnp.log(K)),
    "gce": (lambda o: o.GCELoss(q=0.7), lambda z, y: rl.gce(z, y, 0.7)),
    "sce": (lambda o: o.SCELoss(balance=0.5),
            lambda z, y: rl.sce(z, y, 0.5, 4.0)),
    "mse": (lambda o: o.MSELoss(), rl.mse),
    "nce_rce": (lambda o: o.NCEandRCE(num_classes=K, alpha=5.0, beta=5.0),
                lambda z, y: rl.nce_rce(z, y, 5.0, 5.0)),
    "nce_agce": (lambda o: o.NCEandAGCE(num_classes=K, alpha=0.1, beta=9.9),
                 lambda z, y: rl.nce_agce(z, y, 0.1, 9.9, 3.0, 1.5)),
    "nce_aul": (lambda o: o.NCEandAUL(num_classes=K, alpha=9.9, beta=0.1),
                lambda z, y: rl.nce_aul(z, y, 9.9, 0.1, 6.0, 1.5)),
    "js": (lambda o: o.JSCLoss(num_classes=K, weights="0.1 0.9"),
           lambda z, y: rl.js(z, y, 0.1)),
    "ldr_kl": (lambda o: o.LDRLoss_V1(threshold=0.1, Lambda=10.0),
               lambda z, y: ldr.ldr_kl(
                   ldr.normalize_logits(z, "softplus_l1"), y, 10.0, 0.1)),
    "ldr_kl_lam_0.5": (lambda o: o.LDRLoss_V1(threshold=2.0, Lambda=0.5),
                       lambda z, y: ldr.ldr_kl(
                           ldr.normalize_logits(z, "softplus_l1"), y, 0.5,
                           2.0)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_loss_and_gradient_equal_official(official, name):
  make_official, ours = CASES[name]
  logits, labels = _data()
  value, grad = _official(make_official(official), logits, labels)
  our_value, our_grad = _ours(ours, logits, labels)
  np.testing.assert_allclose(our_value, value, **TOL)
  np.testing.assert_allclose(our_grad, grad, **TOL)


def test_cross_entropy_equals_torch(official):
  logits, labels = _data()
  z = torch.tensor(logits, requires_grad=True)
  value = official.CELoss()(z, torch.tensor(labels))
  value.backward()
  our_value, our_grad = _ours(rl.ce, logits, labels)
  np.testing.assert_allclose(our_value, value.item(), **TOL)
  np.testing.assert_allclose(our_grad, z.grad.numpy(), **TOL)


def test_official_mae_is_identically_zero(official):
  """Why `rl.mae` is not the official `MAELoss`: that one is constant 0."""
  logits, labels = _data()
  value, grad = _official(official.MAELoss(), logits, labels)
  assert abs(value) < 1e-12 and np.abs(grad).max() < 1e-12


@pytest.mark.parametrize("softplus,lam0,alpha,margin",
                         [(False, 10.0, 2.0, 0.1), (True, 10.0, 2.0, 0.1),
                          (False, 0.5, 1.2, 1.0)])
def test_aldr_kl_steps_equal_official(official, softplus, lam0, alpha,
                                      margin):
  """Three steps over overlapping examples: losses, gradients and the
  stored per-example lambdas equal the official ALDRLoss_V1's."""
  aldr = official.ALDRLoss_V1(N=N, threshold=margin, Lambda=lam0,
                              alpha=alpha, softplus=softplus)
  aldr.Lambda = aldr.Lambda.double()
  norm = "softplus_l1" if softplus else "l1"
  loss_fn = ldr.make_loss("aldr_kl", norm)
  hp = {"lam": lam0, "alpha": alpha, "margin": margin}
  state = {"lam": jnp.zeros((N,))}
  for step, index in enumerate([np.arange(7), np.arange(4, 11),
                                np.array([0, 5, 12, 3, 19, 6, 10])]):
    logits, labels = _data(step, scale=3.0 + step)
    value, grad = _official(aldr, logits, labels, torch.tensor(index))
    batch = {"label": jnp.asarray(labels), "index": jnp.asarray(index),
             "mask": jnp.ones((B,), bool)}
    (our_value, (_, new_state)), our_grad = jax.value_and_grad(
        lambda z, s=state, b=batch: (lambda v, m, st: (v, (m, st)))(
            *loss_fn(hp, s, {"logits": z}, b, {}, None)),
        has_aux=True)(jnp.asarray(logits))
    state = new_state
    np.testing.assert_allclose(our_value, value, **TOL)
    np.testing.assert_allclose(our_grad, grad, **TOL)
    seen = np.asarray(state["lam"]) > 0
    np.testing.assert_allclose(np.asarray(state["lam"])[seen],
                               aldr.Lambda.numpy()[seen, 0], **TOL)
    np.testing.assert_allclose(aldr.Lambda.numpy()[~seen, 0], lam0)

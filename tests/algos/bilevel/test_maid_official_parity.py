"""MAID against the official `MAID.py` on the official quadratic problem.

The official code (MohammadSadeghSalehi/MAID) is a set of scripts, not a
package, and is not in this repo: the test imports `MAID.py` from the
checkout named by `REGJAX_OFFICIAL_MAID_DIR` and skips without it:

    git clone https://github.com/MohammadSadeghSalehi/MAID /tmp/maid
    REGJAX_OFFICIAL_MAID_DIR=/tmp/maid JAX_PLATFORMS=cpu \\
        python -m pytest -q tests/algos/bilevel/test_maid_official_parity.py

The problem is `Quadratic.py`'s (torch seed 29, n = 1000, m = 10, theta0 =
1, x0 = x2, eps0 = delta0 = 1e-3, beta = 0.01, rho = tau = 0.5, nu =
1.25), drawn with torch and handed to both sides. `Quadratic.py` runs its
whole study at import, so the test writes the problem's callbacks (the
objectives, `FISTA`, `jacobian`, `jacobiantrans`) itself with the official
semantics: the official FISTA is gradient descent with step 1/L (it resets
`x_old = x` every iteration) stopping on `||grad|| / (2 mu) < eps`; ours
runs with `momentum=False, stop_mu_factor=2` and the official
line-search reference (`refresh_loss=False`). MAID.py imports torchvision
(unused by the algorithm): a stub stands in for it if it is absent.

Compared over 15 outer iterations, both in float32: the upper loss of
every accepted step, its step size, the cumulative lower-level iterations
(the official counter adds k per solve, one less than the gradient
evaluations we count) and the final theta.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types

import jax.numpy as jnp
import numpy as np
import pytest

from algos.bilevel import maid
from algos.bilevel import problems

ROOT = os.environ.get("REGJAX_OFFICIAL_MAID_DIR", "")
_MAID_PY = os.path.join(ROOT, "MAID.py")
pytestmark = pytest.mark.skipif(
    not os.path.isfile(_MAID_PY),
    reason="official MAID code: set REGJAX_OFFICIAL_MAID_DIR to a checkout "
           "of MohammadSadeghSalehi/MAID")
torch = pytest.importorskip("torch")

ITERATIONS = 15
SETTINGS = dict(eps=1e-3, delta=1e-3, beta=0.01, rho=0.5, tau=0.5, nu=1.25)


def _official_module(monkeypatch):
  monkeypatch.setenv("MPLBACKEND", "Agg")
  monkeypatch.syspath_prepend(ROOT)
  if importlib.util.find_spec("torchvision") is None:
    stub = types.ModuleType("torchvision")
    stub.datasets = types.ModuleType("torchvision.datasets")
    stub.transforms = types.ModuleType("torchvision.transforms")
    for name, module in (("torchvision", stub),
                         ("torchvision.datasets", stub.datasets),
                         ("torchvision.transforms", stub.transforms)):
      monkeypatch.setitem(sys.modules, name, module)
  spec = importlib.util.spec_from_file_location("maid_official", _MAID_PY)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _draw():
  """`Quadratic.py`'s draws, in its order."""
  torch.manual_seed(29)
  n, m = 1000, 10
  a1, a2, a3 = torch.rand(n, m), torch.rand(n, m), torch.rand(n, m)
  x1, x2, theta_e = torch.rand(m), torch.rand(m), torch.rand(m)
  y1, y2 = torch.randn(n), torch.randn(n)
  return a1, a2, a3, a1 @ x1 + 0.01 * y1, a2 @ x2 + a3 @ theta_e + 0.01 * y2, x2


def _run_official(module, data):
  a1, a2, a3, b1, b2, x2 = data
  lower = lambda x, theta: 0.5 * torch.linalg.norm(a2 @ x + a3 @ theta
                                                   - b2) ** 2
  upper = lambda x: 0.5 * torch.linalg.norm(a1 @ x - b1) ** 2
  eig = torch.linalg.eigvalsh(a2.T @ a2)
  mu, lip = eig[0], eig[-1]

  def fista(self, theta, x, tol, max_iter):   # gradient descent, see above
    self.mu = mu
    for k in range(max_iter):
      z = x.detach().requires_grad_(True)
      p = torch.autograd.grad(self.lower_level_obj(z, theta), z)[0]
      x = (z - p / lip).detach()
      if torch.linalg.norm(p) / (2 * mu) < tol:
        break
    self.ll_calls += k
    return x

  def mixed(self, x, d, inner_wrt_x):
    """`d/dtheta <grad_x g, d>` or `d/dx <grad_theta g, d>`."""
    x = x.detach().requires_grad_(True)
    th = self.theta.detach().requires_grad_(True)
    inner, outer = (x, th) if inner_wrt_x else (th, x)
    grad = torch.autograd.grad(self.lower_level_obj(x, th), inner,
                               create_graph=True)[0]
    return torch.autograd.grad(torch.dot(grad, d), outer)[0].detach()

  jacobian = lambda self, x, theta, d: mixed(self, x, d, True)
  jacobiantrans = lambda self, x, theta, d: mixed(self, x, d, False)
  lip_upper = torch.linalg.eigvalsh(a1.T @ a1)[-1]
  model = module.MAID(torch.ones(10), x2.clone(), lower, upper, fista,
                      lip_upper, max_iter=ITERATIONS, epsilon=1e-3,
                      delta=1e-3, beta=0.01, rho=0.5, tau=0.5, nu=1.25,
                      jac=jacobian, jact=jacobiantrans)
  theta = model.main()
  return ([float(v) for v in model.loss], model.state["step_size"],
          model.state["LL_calls"], theta.detach().numpy())


def test_iterates_match_the_official_code(monkeypatch, tmp_path):
  monkeypatch.chdir(tmp_path)      # the official main() saves state files
  module = _official_module(monkeypatch)
  data = _draw()
  loss, steps, ll_calls, theta = _run_official(module, data)
  quad = problems.quadratic_from(*(d.numpy() for d in data),
                                 stop_mu_factor=2.0)
  ours_theta, hist = maid.maid(quad.problem, jnp.ones(10), quad.x_init,
                               max_iter=ITERATIONS, momentum=False,
                               refresh_loss=False,
                               **SETTINGS)
  assert len(loss) == len(hist["loss"]) > 5
  np.testing.assert_allclose(hist["loss"], loss, rtol=1e-4)
  np.testing.assert_allclose(hist["step"][1:], steps, rtol=1e-5)
  ours_ll = np.subtract(hist["ll_calls"], hist["ll_solves"])
  np.testing.assert_allclose(ours_ll, ll_calls, rtol=0.01, atol=2)
  np.testing.assert_allclose(ours_theta, theta, rtol=1e-3, atol=1e-4)

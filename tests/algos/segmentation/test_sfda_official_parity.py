"""SFDA's loss against the official `losses.py::EntKLProp`.

The official code (mathilde-b/SFDA) is not a package and is not in this
repo: the test imports `losses.py` and `utils.py` from the checkout named
by `REGJAX_OFFICIAL_SFDA_DIR` and skips without it:

    git clone https://github.com/mathilde-b/SFDA /tmp/sfda
    REGJAX_OFFICIAL_SFDA_DIR=/tmp/sfda JAX_PLATFORMS=cpu \\
        python -m pytest -q tests/algos/segmentation/test_sfda_official_parity.py

`utils.py` imports scikit-image, nibabel and the repo's viewer at module
level for I/O the loss never calls; they are stubbed while it loads. The
same probabilities and size priors go to both (ours `[b, h, w, C]`, theirs
`[b, C, w, h]`); the entropy and KL terms, the predicted proportions and
the gradient of the total loss with respect to the logits agree to float32
round-off.
"""

from __future__ import annotations

import os
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from algos.segmentation import sfda

ROOT = os.environ.get("REGJAX_OFFICIAL_SFDA_DIR", "")
pytestmark = pytest.mark.skipif(
    not os.path.isfile(os.path.join(ROOT, "losses.py")),
    reason="official SFDA code: set REGJAX_OFFICIAL_SFDA_DIR to a checkout "
           "of mathilde-b/SFDA")
torch = pytest.importorskip("torch")

TOL = dict(rtol=2e-5, atol=1e-6)
_STUBS = ("skimage", "skimage.io", "skimage.transform", "nibabel", "viewer")


@pytest.fixture(scope="module")
def official():
  saved = {name: sys.modules.get(name) for name in _STUBS}
  for name in _STUBS:
    if name not in sys.modules:
      stub = types.ModuleType(name)
      stub.__getattr__ = lambda attr: None
      sys.modules[name] = stub
  sys.path.insert(0, ROOT)
  try:
    import losses  # pylint: disable=g-import-not-at-top
    yield losses
  finally:
    sys.path.remove(ROOT)
    for name in ("losses", "utils"):
      sys.modules.pop(name, None)
    for name, module in saved.items():
      if module is None:
        sys.modules.pop(name, None)


@pytest.mark.parametrize("num_classes, weights, ivd", [
    (2, (0.1, 0.9), True),                          # prostate.make
    (5, (0.02, 0.27, 0.18, 0.21, 0.32), False),     # whs.make
])
def test_loss_terms_and_gradient_match(official, num_classes, weights, ivd):
  rng = np.random.default_rng(num_classes)
  b, h, w = 3, 6, 5
  logits = rng.normal(0, 2, (b, h, w, num_classes)).astype(np.float32)
  size_prior = rng.uniform(0.05, 0.2, num_classes - 1)
  present = rng.random((b, num_classes - 1)) < 0.7
  prior = np.asarray(sfda.class_prior(jnp.asarray(size_prior, jnp.float32),
                                      jnp.asarray(present)))
  lamb_se, lamb_kl = 0.7, 1.3

  def ours(x):
    probs = jax.nn.softmax(x, -1)
    ent, kl, est = sfda.sfda_terms(probs, jnp.asarray(prior),
                                   jnp.asarray(weights, jnp.float32), 1.0)
    return lamb_se * ent + lamb_kl * kl, (ent, kl, est)

  (_, (ent, kl, est)), grad = jax.value_and_grad(ours, has_aux=True)(
      jnp.asarray(logits))

  loss_fn = official.EntKLProp(
      power=1, fn="norm_soft_size", curi=True, idc_c=list(
          range(1, num_classes)), ivd=ivd, weights_se=list(weights),
      lamb_se=lamb_se, lamb_conspred=1, lamb_consprior=lamb_kl)
  t_logits = torch.tensor(logits.transpose(0, 3, 2, 1), requires_grad=True)
  # PredictionBounds: sizes in pixels, [b, C, 1] (ivd) or [b, C, 2].
  sizes = torch.tensor(prior * h * w, dtype=torch.float32)[..., None]
  bounds = sizes if ivd else torch.cat([sizes, sizes], -1)
  t_ent, t_kl, t_est = loss_fn(torch.softmax(t_logits, 1), None, bounds)
  (t_ent + t_kl).backward()

  np.testing.assert_allclose(lamb_se * ent, t_ent.item(), **TOL)
  np.testing.assert_allclose(lamb_kl * kl, t_kl.item(), **TOL)
  np.testing.assert_allclose(est, t_est.detach().numpy(), **TOL)
  np.testing.assert_allclose(
      grad, t_logits.grad.numpy().transpose(0, 3, 2, 1), rtol=1e-4,
      atol=1e-6)

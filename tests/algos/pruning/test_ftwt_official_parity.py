"""FTWT's mask targets and mask loss against the official PyTorch code.

The official code (selkerdawy/FTWT) is not a package and is not in this
repo: the test loads `utils/layers.py` and `utils/utils.py` from the
checkout named by `REGJAX_OFFICIAL_FTWT_DIR` and skips without it:

    git clone https://github.com/selkerdawy/FTWT /tmp/ftwt_official
    REGJAX_OFFICIAL_FTWT_DIR=/tmp/ftwt_official JAX_PLATFORMS=cpu \\
        python -m pytest -q tests/algos/pruning/test_ftwt_official_parity.py

`utils/utils.py` imports torchvision (data loaders the loss never calls);
it is stubbed while the file loads. The same post-ReLU activations go to
both (ours `[b, h, w, C]`, theirs `[b, C, h, w]`): the heat-map criterion,
the mass targets (`get_gt_mask_ratio`, several `mthresh` incl. the special
case 1.0), the uniform targets (`get_gt_mask_pratio`) and the mask loss
and accuracy (`compute_mask_loss_per_input`) agree.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types

import jax.numpy as jnp
import numpy as np
import pytest

from algos.pruning import ftwt
from common.models import gated_cnn

ROOT = os.environ.get("REGJAX_OFFICIAL_FTWT_DIR", "")
pytestmark = pytest.mark.skipif(
    not os.path.isfile(os.path.join(ROOT, "utils", "layers.py")),
    reason="official FTWT code: set REGJAX_OFFICIAL_FTWT_DIR to a checkout "
           "of selkerdawy/FTWT")
torch = pytest.importorskip("torch")

_STUBS = ("torchvision", "torchvision.datasets", "torchvision.transforms",
          "matplotlib", "matplotlib.pyplot")


def _load(name, path):
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  sys.modules[name] = module
  spec.loader.exec_module(module)
  return module


@pytest.fixture(scope="module")
def official():
  saved = {n: sys.modules.get(n) for n in _STUBS + ("utils", "utils.layers",
                                                    "utils.utils")}
  for name in _STUBS:
    if name not in sys.modules:
      sys.modules[name] = types.ModuleType(name)
  pkg = types.ModuleType("utils")
  pkg.__path__ = [os.path.join(ROOT, "utils")]
  sys.modules["utils"] = pkg
  try:
    layers = _load("utils.layers", os.path.join(ROOT, "utils", "layers.py"))
    utils = _load("utils.utils", os.path.join(ROOT, "utils", "utils.py"))
    yield layers, utils
  finally:
    for name, module in saved.items():
      if module is None:
        sys.modules.pop(name, None)
      else:
        sys.modules[name] = module


def _activations():
  rng = np.random.default_rng(0)
  h = np.maximum(rng.normal(size=(5, 6, 6, 16)) * rng.exponential(
      size=(5, 1, 1, 16)), 0).astype(np.float32)
  h[0, :, :, :3] = 0.0                  # dead channels
  return h


def test_criterion_and_targets_match_official(official):
  layers, _ = official
  h = _activations()
  x = torch.from_numpy(h.transpose(0, 3, 1, 2).copy())
  stats = gated_cnn.channel_criterion(jnp.asarray(h))
  np.testing.assert_allclose(stats, layers.get_fmap_criteria(x).numpy(),
                             rtol=1e-6)
  for mu in (0.5, 0.8, 0.9, 0.95, 1.0):
    want = layers.get_gt_mask_ratio(x, mu).numpy()[:, :, 0, 0]
    got = ftwt.mass_targets(stats, jnp.float32(mu))
    np.testing.assert_array_equal(np.asarray(got), want, err_msg=f"mu={mu}")
  for ratio in (0.25, 0.5):
    want = layers.get_gt_mask_pratio(x, ratio).numpy()[:, :, 0, 0]
    got = ftwt.uniform_targets(stats, ratio)
    np.testing.assert_array_equal(np.asarray(got), want)


def test_mask_loss_and_accuracy_match_official(official):
  layers, utils = official
  rng = np.random.default_rng(1)
  h = _activations()
  stats = gated_cnn.channel_criterion(jnp.asarray(h))
  logits = [rng.normal(size=(5, 16)).astype(np.float32),
            rng.normal(size=(5, 16)).astype(np.float32) * 3]
  targets = [np.asarray(ftwt.mass_targets(stats, jnp.float32(mu)))
             for mu in (0.8, 0.95)]
  del layers
  loss, acc, _ = utils.compute_mask_loss_per_input(
      [torch.from_numpy(t[:, :, None, None]) for t in targets],
      [torch.from_numpy(z[:, :, None, None]) for z in logits], lweight=1.0)
  got = ftwt.mask_loss([jnp.asarray(z) for z in logits],
                       [jnp.asarray(t) for t in targets])
  np.testing.assert_allclose(got, loss.item(), rtol=1e-5)
  got_acc = np.mean(ftwt.mask_accuracy([jnp.asarray(z) for z in logits],
                                       [jnp.asarray(t) for t in targets]))
  np.testing.assert_allclose(100 * got_acc, acc.item(), rtol=1e-5)

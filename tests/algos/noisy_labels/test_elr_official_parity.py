"""ELR's loss, gradient and target update against the official PyTorch code.

The official `elr_loss` (shengliu66/ELR, ELR/model/loss.py) runs on the CPU
beside ours on the same logits, labels and example indices over several
steps (overlapping indices, logits large enough that the 1e-4 clamp
binds); loss, gradient w.r.t. the logits and the whole target table must
agree to 1e-6. The official code is not in this repo: the test imports its
loss file from the checkout named by `REGJAX_OFFICIAL_ELR_DIR` (the folder
holding `ELR/model/loss.py`) and skips without it:

    git -C <mirror of shengliu66/ELR> archive HEAD ELR | tar -x -C /tmp/elr
    REGJAX_OFFICIAL_ELR_DIR=/tmp/elr JAX_PLATFORMS=cpu \\
        python -m pytest -q tests/algos/noisy_labels/test_elr_official_parity.py

Its only repo import, `parse_config.ConfigParser` (the singleton the loss
reads lambda from), is stood in by a module holding just that number.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from algos.noisy_labels import elr
from common.core import method as method_lib

ENV = "REGJAX_OFFICIAL_ELR_DIR"
ROOT = os.environ.get(ENV, "")
LOSS_FILE = os.path.join(ROOT, "ELR", "model", "loss.py")
pytestmark = pytest.mark.skipif(
    not os.path.isfile(LOSS_FILE),
    reason=f"official ELR code: set {ENV} to a checkout of shengliu66/ELR")
torch = pytest.importorskip("torch")

N, C, B, STEPS = 20, 10, 6, 5
TOL = dict(rtol=1e-6, atol=1e-6)


def _official_loss_module(lam: float):
  """ELR/model/loss.py, imported with `parse_config` stood in."""
  stand_in = types.ModuleType("parse_config")

  class ConfigParser:  # pylint: disable=too-few-public-methods
    @staticmethod
    def get_instance():
      return {"train_loss": {"args": {"lambda": lam}}}

  stand_in.ConfigParser = ConfigParser
  saved = sys.modules.get("parse_config")
  sys.modules["parse_config"] = stand_in
  try:
    spec = importlib.util.spec_from_file_location("elr_official_loss",
                                                  LOSS_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
  finally:
    if saved is None:
      sys.modules.pop("parse_config", None)
    else:
      sys.modules["parse_config"] = saved
  return module


def _steps(seed: int):
  rng = np.random.default_rng(seed)
  for _ in range(STEPS):
    # Indices overlap between steps (N = 20, 6 per step), never within one.
    index = rng.choice(N, B, replace=False)
    label = rng.integers(0, C, B)
    logits = (6.0 * rng.normal(size=(B, C))).astype(np.float32)
    yield index, label, logits


@pytest.mark.parametrize("lam, beta", [(3.0, 0.7), (1.0, 0.9), (7.0, 0.9)])
def test_loss_gradient_and_targets_equal_official(lam, beta):
  torch.set_num_threads(1)
  official = _official_loss_module(lam).elr_loss(num_examp=N, num_classes=C,
                                                 beta=beta)
  run = method_lib.RunInfo(num_examples=N, num_classes=C, steps_per_epoch=1,
                           num_epochs=1, total_steps=STEPS,
                           global_batch_size=B)
  state = elr.init(None, method_lib.InitContext(run, {}, {}, {}))
  hp = {"lam": jnp.float32(lam), "beta": jnp.float32(beta)}

  @jax.jit
  def ours(state, batch, logits):
    fn = lambda z: elr.loss(hp, state, {"logits": z}, batch, {}, None)
    (value, (_, new)), grad = jax.value_and_grad(
        lambda z: (lambda o: (o[0], o[1:]))(fn(z)), has_aux=True)(logits)
    return value, grad, new

  clamped = 0
  for index, label, logits in _steps(int(lam * 10)):
    out = torch.tensor(logits, requires_grad=True)
    value_t = official(index.tolist(), out, torch.tensor(label))
    value_t.backward()
    batch = {"label": jnp.asarray(label, jnp.int32),
             "index": jnp.asarray(index, jnp.int32),
             "mask": jnp.ones((B,), bool)}
    value, grad, state = ours(state, batch, jnp.asarray(logits))
    np.testing.assert_allclose(value, value_t.item(), **TOL)
    np.testing.assert_allclose(grad, out.grad.numpy(), **TOL)
    np.testing.assert_allclose(state["targets"], official.target.numpy(),
                               **TOL)
    p = torch.softmax(torch.tensor(logits), 1)
    clamped += int(((p < 1e-4) | (p > 1 - 1e-4)).sum())
  assert clamped > 0   # the clamp's (zero) gradient was exercised

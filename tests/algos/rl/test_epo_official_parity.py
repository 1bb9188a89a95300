"""EPO's corridor penalty and phase weight against the official actor.

The official repo (WujiangXu/EPO, a verl-agent fork) has no unit tests for
them; the functions live on `DataParallelPPOActor` in
`verl/workers/actor/dp_actor.py`, whose imports need verl, flash-attn and a
GPU. The test compiles the two methods `generate_entropy_penalty` and
`_calculate_epoch_based_entropy_weight` from the checkout named by
`REGJAX_OFFICIAL_EPO_DIR` onto a stub class (CPU torch) and skips without it:

    (fetch WujiangXu/EPO; `git show HEAD:verl/workers/actor/dp_actor.py`
     into /tmp/epo_official/verl/workers/actor/)
    REGJAX_OFFICIAL_EPO_DIR=/tmp/epo_official JAX_PLATFORMS=cpu \\
        python -m pytest -q tests/algos/rl/test_epo_official_parity.py
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from algos.rl import epo
from tests import official_code

ROOT = os.environ.get("REGJAX_OFFICIAL_EPO_DIR", "")
_FILE = os.path.join(ROOT, "verl", "workers", "actor", "dp_actor.py")
pytestmark = pytest.mark.skipif(
    not os.path.isfile(_FILE),
    reason="official EPO code: set REGJAX_OFFICIAL_EPO_DIR to a checkout of "
           "WujiangXu/EPO")
torch = pytest.importorskip("torch")
_METHODS = ("generate_entropy_penalty", "_calculate_epoch_based_entropy_weight")


@pytest.fixture(scope="module")
def official():
  return official_code.class_with_methods(
      _FILE, "DataParallelPPOActor", _METHODS, {"np": np, "torch": torch})()


def test_phase_weight_equals_official(official):
  epochs = [(e, m) for m in (0, 1, 2, 7, 150) for e in range(-1, m + 3)]
  want = [official._calculate_epoch_based_entropy_weight(e, m)
          for e, m in epochs]
  got = jax.jit(jax.vmap(epo.epo_phase_weight))(
      jnp.array([e for e, _ in epochs]), jnp.array([m for _, m in epochs]))
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("mode", epo.MASK_MODES)
def test_corridor_equals_official(official, mode):
  rng = np.random.default_rng(0)
  n, t, k = 12, 5, 6
  ent = rng.gamma(2.0, 0.5, (n, t)).astype(np.float32)
  history = rng.uniform(0.3, 1.5, k).astype(np.float32)
  step = rng.integers(0, k, n).astype(np.int32)
  for lo, hi, pen in ((0.0, 2.0, 0.1), (0.8, 1.2, 0.05), (0.5, 1.5, 0.3)):
    want, ratio = official.generate_entropy_penalty(
        history, torch.tensor(ent), step, mode, lo, hi, pen)
    got, inside = epo.entropy_corridor_mask(
        jnp.asarray(ent), jnp.asarray(history[step]), lo, hi, pen, mode)
    np.testing.assert_allclose(np.asarray(got), want.numpy(), atol=1e-7)
    frac = np.asarray(inside).mean() if mode == "token" else (
        np.asarray(inside)[:, 0].mean())
    np.testing.assert_allclose(frac, ratio, atol=1e-7)

"""EVOL-RL rewards against the official reward manager's novelty code.

The official code (YujunZhou/EVOL-RL) is a fork of verl; importing its
`semantic_novelty.py` pulls in verl, vLLM clients and wandb. The test
instead compiles the reward manager's own methods (`_compute_novelty_rewards`,
`_compute_similarity_based_rewards`, `_extract_after_think`,
`_check_boxed_content_has_numbers`) from the checkout named by
`REGJAX_OFFICIAL_EVOL_RL_DIR` onto a stub class whose embedding call returns
our embeddings, and skips without it:

    (fetch YujunZhou/EVOL-RL into /tmp/evol_rl_official)
    REGJAX_OFFICIAL_EVOL_RL_DIR=/tmp/evol_rl_official JAX_PLATFORMS=cpu \\
        python -m pytest -q tests/algos/rl/test_evol_rl_official_parity.py

The official base rewards (the TTRL majority reward) are fed from our
`ttrl_rewards`, so the novelty and rescaling code is what is compared, on
groups with invalid answers, lone sides, ties and all-equal embeddings.
"""

from __future__ import annotations

import os
import re

import jax
import numpy as np
import pytest

from algos.rl import evol_rl
from tests import official_code

ROOT = os.environ.get("REGJAX_OFFICIAL_EVOL_RL_DIR", "")
_FILE = os.path.join(ROOT, "verl", "verl", "workers", "reward_manager",
                     "semantic_novelty.py")
pytestmark = pytest.mark.skipif(
    not os.path.isfile(_FILE),
    reason="official EVOL-RL code: set REGJAX_OFFICIAL_EVOL_RL_DIR to a "
           "checkout of YujunZhou/EVOL-RL")
_METHODS = ("_compute_novelty_rewards", "_compute_similarity_based_rewards",
            "_extract_after_think", "_check_boxed_content_has_numbers")


@pytest.fixture(scope="module")
def official():
  return official_code.class_with_methods(
      _FILE, "SemanticTTRLRewardManager", _METHODS, {"np": np, "re": re})


def _groups():
  rng = np.random.default_rng(0)
  g, d = 8, 6
  cases = []
  for _ in range(6):   # random answers and embeddings, a few invalid
    cases.append((rng.integers(0, 3, g), rng.random(g) > 0.2,
                  rng.normal(size=(g, d))))
  cases.append((np.array([1, 1, 1, 1, 2, 3, 4, 5]), np.ones(g, bool),
                rng.normal(size=(g, d))))                 # lone minorities
  cases.append((np.array([1, 2, 2, 3, 3, 4, 4, 5]), np.ones(g, bool),
                rng.normal(size=(g, d))))                 # tie -> first met
  cases.append((np.array([7] * g), np.ones(g, bool),
                np.ones((g, d))))                         # equal novelty
  cases.append((np.arange(g), np.eye(g, dtype=bool)[0],
                rng.normal(size=(g, d))))                 # one valid -> -1
  cases.append((np.arange(g), np.zeros(g, bool),
                rng.normal(size=(g, d))))                 # none valid
  cases.append((np.array([3, 3, 5, 5, 5, 6, 3, 9]), np.ones(g, bool),
                np.abs(rng.normal(size=(g, d)))))         # positive cosines
  return cases


def test_rewards_equal_official(official):
  # float32 cosines on both sides; the min-max rescaling is float64 numpy
  # in the official code, so ours runs under x64 here
  with jax.enable_x64(True):
    _compare(official)


def _compare(official):
  reward = jax.jit(evol_rl.evol_rl_rewards)
  for answers, valid, emb in _groups():
    texts = [f"step {i} \\boxed{{{a}}}" if v else f"step {i} no answer"
             for i, (a, v) in enumerate(zip(answers, valid))]
    table = {t: e.astype(np.float32) for t, e in zip(texts, emb)}
    manager = official()
    manager.debug_mode = False
    manager._get_semantic_embeddings_batch = lambda ts: [table[t] for t in ts]
    base = np.asarray(evol_rl.ttrl_rewards(answers, valid)).tolist()
    want = np.array(manager._compute_novelty_rewards(texts, base))
    got = np.asarray(reward(answers, valid, emb.astype(np.float32)))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6,
                               err_msg=f"answers={answers} valid={valid}")

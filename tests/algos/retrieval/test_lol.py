"""lol: regulariser identities, loss vs numpy, gradients, counts, the model,
no retrace, and parity with the official pairwise_hinge / CE."""

from __future__ import annotations

import functools
import os
import sys
import types

import chex
import jax
import jax.numpy as jnp
import jax.test_util  # pylint: disable=unused-import
import numpy as np
import pytest

from algos.retrieval import lol
from algos.retrieval import prf_reformulator


def _losses(n=4, m=3, seed=0):
  return np.random.default_rng(seed).normal(size=(n, m)).astype(np.float32)


def test_comparative_regularizer_by_hand_and_zero_strength():
  losses = np.array([[1.0, 3.0, 2.0], [2.0, 1.0, 0.5]], np.float32)
  # pairs (0,1),(0,2),(1,2): relu(L_i - L_j): row 0: 0, 0, 1; row 1: 1, 1.5, .5
  want = (0 + 0 + 1 + 1 + 1.5 + 0.5) / 6
  reg = jax.jit(lol.comparative_regularizer)
  got = reg(jnp.asarray(losses), 0.0)
  np.testing.assert_allclose(got, want, rtol=1e-6)
  got_m = reg(jnp.asarray(losses), 0.5)
  want_m = np.mean(np.maximum(losses[:, [0, 0, 1]] - losses[:, [1, 2, 2]]
                              + 0.5, 0))
  np.testing.assert_allclose(got_m, want_m, rtol=1e-6)
  assert float(lol.comparative_regularizer(jnp.ones((3, 1)), 0.0)) == 0.0
  hp = dict(lambda_pr=jnp.float32(1.0), lambda_cr=jnp.float32(0.0),
            margin=jnp.float32(0.0))
  total, _ = jax.jit(lol.lol_objective)(jnp.asarray(losses), hp)
  np.testing.assert_allclose(total, losses.mean(), rtol=1e-6)   # strength 0


def test_reformulation_loss_matches_numpy_and_gradients():
  rng = np.random.default_rng(1)
  qv = rng.normal(size=(2, 3, 6)).astype(np.float32)
  cand = rng.normal(size=(2, 5, 6)).astype(np.float32)
  mask = np.array([[1, 1, 0, 1, 1], [1, 1, 1, 1, 0]], bool)
  got = jax.jit(lol.reformulation_loss)(qv, cand, mask, 0.5)
  s = np.einsum("nmv,ncv->nmc", qv, cand) / 0.5
  s = np.where(mask[:, None], s, -np.inf)
  want = np.log(np.exp(s).sum(-1)) - s[..., 0]
  np.testing.assert_allclose(got, want, rtol=1e-5)
  f = lambda q: jnp.sum(lol.lol_objective(lol.reformulation_loss(
      q, cand, mask, 0.5), dict(lambda_pr=1.0, lambda_cr=0.7,
                                margin=0.1))[0])
  jax.test_util.check_grads(jax.jit(f), (jnp.asarray(qv),), order=1,
                            modes=["rev"],
                            atol=1e-2, rtol=1e-2)


def test_feedback_counts_and_revision_masks():
  counts = np.asarray(jax.jit(lol.feedback_counts, static_argnums=(1, 2, 3))(
      jax.random.PRNGKey(0), 64, 3, 5))
  assert counts.shape == (64, 3) and counts.min() >= 0 and counts.max() <= 5
  assert np.all(np.diff(counts, axis=1) < 0)          # distinct, descending
  assert len(np.unique(counts)) == 6                  # all of 0..5 drawn
  inputs = {"query": jnp.ones((2, 4)), "fb": jnp.ones((2, 5, 4)),
            "fb_mask": jnp.ones((2, 5), bool)}
  rev = jax.jit(lol.revise_inputs)(inputs, jnp.array([[5, 2], [3, 0]]))
  np.testing.assert_array_equal(rev["fb_mask"].sum(1), [5, 2, 3, 0])
  np.testing.assert_array_equal(rev["fb_mask"][1], [1, 1, 0, 0, 0])


@functools.cache
def _model():
  model = prf_reformulator.PRFReformulator(vocab_size=12, hidden=8,
                                           num_layers=1, num_heads=2,
                                           max_feedback=3)
  rng = np.random.default_rng(2)
  inputs = {"query": rng.poisson(0.5, (4, 12)).astype(np.float32) + np.eye(
      4, 12, dtype=np.float32),
            "fb": rng.random((4, 3, 12)).astype(np.float32),
            "fb_mask": np.array([[1, 1, 1], [1, 0, 0], [0, 0, 0],
                                 [1, 1, 0]], bool)}
  params = jax.jit(model.init)(jax.random.PRNGKey(0), inputs)
  return model, params, inputs


def test_model_masks_feedback_and_writes_unit_vectors():
  model, params, inputs = _model()
  apply = jax.jit(model.apply)
  out = apply(params, inputs)
  np.testing.assert_allclose(np.linalg.norm(out["query_vector"], axis=1), 1,
                             rtol=1e-5)
  assert np.all(np.asarray(out["gates"])[~inputs["fb_mask"]] == 0)
  # Masked feedback documents change nothing.
  other = dict(inputs, fb=np.where(inputs["fb_mask"][..., None],
                                   inputs["fb"], 7.0).astype(np.float32))
  np.testing.assert_allclose(apply(params, other)["query_vector"],
                             out["query_vector"], atol=1e-6)


def test_hyperparameters_do_not_retrace():
  losses = jnp.asarray(_losses())

  @jax.jit
  @chex.assert_max_traces(n=1)
  def f(hp):
    return lol.lol_objective(losses, hp)[0]

  a = f(dict(lambda_pr=1.0, lambda_cr=0.0, margin=0.0))
  b = f(dict(lambda_pr=1.0, lambda_cr=2.0, margin=0.3))
  assert float(b) > float(a)


_OFFICIAL = os.environ.get("REGJAX_OFFICIAL_LOL_DIR", "")


@pytest.mark.skipif(not _OFFICIAL, reason=(
    "parity with the official LoL loss needs REGJAX_OFFICIAL_LOL_DIR=<a "
    "checkout of zycdev/LoL> (util.py's pairwise_hinge, trainer.py's "
    "cross entropy)"))
def test_parity_with_official_loss():
  torch = pytest.importorskip("torch")
  sys.modules.setdefault("pytrec_eval", types.ModuleType("pytrec_eval"))
  sys.path.insert(0, _OFFICIAL)
  try:
    import util as official_util  # pylint: disable=import-outside-toplevel
  finally:
    sys.path.remove(_OFFICIAL)
  rng = np.random.default_rng(3)
  n, m, c, v = 3, 3, 6, 5
  qv = rng.normal(size=(n, m, v)).astype(np.float32)
  cand = rng.normal(size=(n, c, v)).astype(np.float32)
  mask = np.ones((n, c), bool)
  mask[0, 2] = mask[2, 4] = False
  ours = lol.reformulation_loss(qv, cand, mask, 1.0)
  total, parts = lol.lol_objective(ours, dict(lambda_pr=1.0, lambda_cr=1.0,
                                              margin=0.0))
  # The official step: q_p_sim [Q, P] with other positives at -inf,
  # F.cross_entropy(reduction='none'), then pairwise_hinge over
  # revision_effects = -pr_loss.view(-1, 1 + n_compare).
  sim = torch.einsum("nmv,ncv->nmc", torch.tensor(qv), torch.tensor(cand))
  sim = sim.masked_fill(~torch.tensor(mask)[:, None], float("-inf"))
  pr = torch.nn.functional.cross_entropy(
      sim.reshape(n * m, c), torch.zeros(n * m, dtype=torch.long),
      reduction="none")
  effects = -pr.view(-1, m)
  labels = torch.arange(m, 0, -1).unsqueeze(0).expand_as(effects)
  cr = official_util.pairwise_hinge(effects, labels, margin=0.,
                                    reduction="mean")
  np.testing.assert_allclose(np.asarray(ours).reshape(-1), pr.numpy(),
                             rtol=1e-5)
  np.testing.assert_allclose(parts["loss_cr"], cr.item(), rtol=1e-5)
  np.testing.assert_allclose(total, pr.mean().item() + cr.item(), rtol=1e-5)

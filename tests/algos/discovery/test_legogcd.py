"""LegoGCD and SimGCD losses: identities, q_hat, official parity.

The parity test imports the official `model.py` (DistillLoss with DKL,
SupConLoss, info_nce_logits, update_qhat) from a checkout named by
`REGJAX_OFFICIAL_LEGOGCD_DIR` and skips without it:

    git clone https://github.com/Cliffia123/LegoGCD /tmp/legogcd
    REGJAX_OFFICIAL_LEGOGCD_DIR=/tmp/legogcd JAX_PLATFORMS=cpu \\
        python -m pytest -q tests/algos/discovery/test_legogcd.py

and writes the loss of `train.py`'s step (its inline LER "Soft loss" and
the weighting) around those pieces in torch, float64.
"""

from __future__ import annotations

import importlib.util
import math
import os
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from algos.discovery import legogcd
from algos.discovery import simgcd

B, K, D, OLD = 8, 6, 5, 3
SPE = 4   # steps per epoch of the fake run


def _hp(**kw):
  hp = dict(simgcd.DEFAULTS, num_old=OLD, ler_weight=2.0, thr=0.7,
            pseudo_temp=0.05, gamma=0.4, qhat_momentum=0.999,
            dkl_weight=1.0)
  hp.update(kw)
  return {k: jnp.asarray(v, jnp.float64 if jax.config.jax_enable_x64
                         else jnp.float32) for k, v in hp.items()}


def _ctx(epoch):
  return types.SimpleNamespace(step=jnp.int32(epoch * SPE),
                               run=types.SimpleNamespace(steps_per_epoch=SPE))


def _data(seed=0):
  rng = np.random.default_rng(seed)
  # Cosine logits in [-1, 1], some rows confident at temperature 0.1.
  logits = np.tanh(rng.normal(size=(2 * B, K)))
  logits[: B // 2, 0] = 1.0
  logits[B: B + B // 2, 0] = 1.0
  proj = rng.normal(size=(2 * B, D))
  labels = rng.integers(0, K, B)
  labels[:3] = (0, 1, 0)
  labelled = (labels < OLD) & (rng.random(B) < 0.6)
  labelled[:3] = True   # SupCon needs labelled rows (the official fails)
  qhat = rng.dirichlet(np.ones(K))
  return logits, proj, labels, labelled, qhat


def _ours(hp, epoch, logits, proj, labels, labelled, qhat, form="official"):
  twice = lambda x: jnp.concatenate([jnp.asarray(x), jnp.asarray(x)])
  valid = jnp.ones(2 * B, bool)

  def f(l, p, hp, q):
    loss, terms, new_q = legogcd.legogcd_loss(
        hp, _ctx(epoch), l, p, twice(labels), twice(labelled), valid, q,
        form)
    return loss, (terms, new_q)
  return jax.jit(jax.value_and_grad(f, argnums=(0, 1), has_aux=True))(
      jnp.asarray(logits), jnp.asarray(proj), hp, jnp.asarray(qhat))


def test_ler_and_dkl_at_strength_zero_give_the_simgcd_loss():
  logits, proj, labels, labelled, qhat = _data()
  twice = lambda x: jnp.concatenate([jnp.asarray(x), jnp.asarray(x)])
  valid = jnp.ones(2 * B, bool)

  @jax.jit
  def both(hp, l, p):
    loss, terms, _ = legogcd.legogcd_loss(hp, _ctx(3), l, p, twice(labels),
                                          twice(labelled), valid,
                                          jnp.asarray(qhat))
    base, _ = simgcd.simgcd_terms(hp, _ctx(3), l, p, twice(labels),
                                  twice(labelled), valid)
    return loss, simgcd.simgcd_total(hp, base), terms["ler"], terms["dkl"]

  loss, base, ler, dkl = both(_hp(ler_weight=0.0, dkl_weight=0.0),
                              jnp.asarray(logits), jnp.asarray(proj))
  np.testing.assert_allclose(loss, base, rtol=1e-6)
  assert float(ler) > 0 and float(dkl) > 0   # the terms exist, unweighted


def test_qhat_update_and_potential_known_rows():
  logits, _, labels, labelled, qhat = _data(1)
  valid = jnp.ones(2 * B, bool)
  new = legogcd.update_qhat(jnp.asarray(qhat), jnp.asarray(logits), valid,
                            0.9)
  probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
  np.testing.assert_allclose(new, 0.9 * qhat + 0.1 * probs.mean(0),
                             rtol=1e-5)
  lab2 = np.concatenate([labelled, labelled])
  sel = np.asarray(legogcd.potential_known(
      jnp.asarray(logits), jnp.asarray(lab2), valid, OLD, 0.7))
  p = np.exp(logits / 0.1)
  p /= p.sum(1, keepdims=True)
  want = ~lab2 & (p.max(1) >= 0.7) & (p.argmax(1) < OLD)
  np.testing.assert_array_equal(sel, want)
  assert want.any()


def test_teacher_temperature_follows_the_official_linspace():
  sched = np.concatenate([np.linspace(0.07, 0.04, 30), np.full(170, 0.04)])
  for e in (0, 1, 17, 29, 30, 199):
    got = simgcd.teacher_temperature(jnp.int32(e), 0.07, 0.04, 30.0)
    np.testing.assert_allclose(got, sched[e], rtol=1e-6)


ROOT = os.environ.get("REGJAX_OFFICIAL_LEGOGCD_DIR", "")


@pytest.mark.skipif(not os.path.isfile(os.path.join(ROOT, "model.py")),
                    reason="official LegoGCD code: set "
                    "REGJAX_OFFICIAL_LEGOGCD_DIR to a checkout")
@pytest.mark.parametrize("epoch", [2, 40])
def test_equals_the_official_step_loss_and_gradients(epoch):
  torch = pytest.importorskip("torch")
  spec = importlib.util.spec_from_file_location(
      "legogcd_official_model", os.path.join(ROOT, "model.py"))
  official = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(official)
  logits, proj, labels, labelled, qhat = _data(epoch)
  out = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
  prj = torch.tensor(proj, dtype=torch.float64, requires_grad=True)
  y, lab = torch.tensor(labels), torch.tensor(labelled)
  q = torch.tensor(qhat[None], dtype=torch.float64)
  # train.py's step, with sup_weight 0.35, memax 2, threshold 0.7.
  sup_logits = torch.cat([f[lab] for f in (out / 0.1).chunk(2)])
  cls = torch.nn.CrossEntropyLoss()(sup_logits, torch.cat([y[lab]] * 2))
  cluster = official.DistillLoss(30, 200, 2, 0.07, 0.04)(
      out, out.detach(), epoch)
  avg = (out / 0.1).softmax(1).mean(0)
  cluster = cluster + 2 * (torch.sum(avg * torch.log(avg)) + math.log(K))
  c_logits, c_labels = official.info_nce_logits(prj, device="cpu")
  con = torch.nn.CrossEntropyLoss()(c_logits, c_labels)
  sp = torch.cat([f[lab].unsqueeze(1) for f in prj.chunk(2)], 1)
  supcon = official.SupConLoss()(torch.nn.functional.normalize(sp, dim=-1),
                                 labels=y[lab])
  probs = torch.softmax(out / 0.1, -1)
  maxp, idx = probs.max(-1)
  lab2 = torch.cat([lab, lab])
  o = (~lab2) & maxp.ge(0.7) & idx.lt(OLD)
  pseudo = torch.softmax(out / 0.05, -1)
  logp = torch.log_softmax(out / 0.05 + 0.4 * torch.log(q), -1)
  nll = torch.sum(-pseudo * logp, 1) * o
  new_q = official.update_qhat(torch.softmax(out.detach(), -1), q, 0.999)
  total = (0.65 * cluster + 0.35 * cls + 0.65 * con + 0.35 * supcon
           + 2 * nll.mean())
  total.backward()
  with jax.enable_x64(True):
    (loss, (_, our_q)), (g_l, g_p) = _ours(_hp(), epoch, logits, proj,
                                           labels, labelled, qhat)
    np.testing.assert_allclose(loss, total.item(), rtol=1e-9)
    np.testing.assert_allclose(g_l, out.grad.numpy(), atol=1e-9)
    np.testing.assert_allclose(g_p, prj.grad.numpy(), atol=1e-9)
    np.testing.assert_allclose(our_q, new_q.numpy()[0], rtol=1e-9)

"""CRKD and its UNO base: hand computations, alpha 0 = UNO, gradients, and
parity with the official PyTorch functions (`REGJAX_OFFICIAL_CRKD_DIR`)."""

from __future__ import annotations

import ast
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from algos.discovery import crkd
from algos.discovery import uno
from algos.discovery import uno_net
from common.core import method as method_lib

V, H, B, L, K = 2, 3, 6, 4, 5
T_UNO, T_KD = 0.1, 4.0


def _logits(seed=0):
  r = np.random.default_rng(seed)
  # Cosine logits lie in [-1, 1].
  return (np.tanh(r.normal(size=(V, B, L))).astype(np.float32),
          np.tanh(r.normal(size=(V, B, L))).astype(np.float32),
          np.tanh(r.normal(size=(V, H, B, K))).astype(np.float32))


LABELLED = np.array([True, False, True, False, False, True])


def _softmax(x):
  e = np.exp(x - x.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def _hand_crkd(teacher, student, unlab):
  """The official formula, one head, view and row at a time (float64)."""
  s = T_UNO * T_KD
  rows = np.flatnonzero(~LABELLED)
  weights = np.zeros((V, H, B))
  for v in range(V):
    for h in range(H):
      for b in rows:
        q = _softmax(np.concatenate([student[v, b], unlab[v, h, b]]) / s)
        weights[v, h, b] = q[:L].sum()
  weights /= weights[:, :, rows].mean()
  per_head = np.zeros(H)
  for h in range(H):
    for v in range(V):
      for b in rows:
        p_t = _softmax(teacher[v, b].astype(np.float64) / s)
        p_s = _softmax(student[v, b].astype(np.float64) / s)
        per_head[h] += -(p_t * np.log(p_s)).sum() * T_KD**2 * weights[v, h, b]
  return per_head / (V * len(rows))


def test_crkd_loss_equals_hand_computation():
  teacher, student, unlab = _logits()
  per_head, _ = jax.jit(crkd.crkd_loss)(teacher, student, unlab, ~LABELLED,
                                        T_UNO, T_KD)
  np.testing.assert_allclose(per_head, _hand_crkd(teacher, student, unlab),
                             rtol=1e-5)


def test_crkd_gradient_matches_finite_differences_and_trains_the_weight():
  teacher, student, unlab = _logits(1)
  f = jax.jit(lambda s, u: jnp.mean(crkd.crkd_loss(
      teacher, s, u, ~LABELLED, T_UNO, T_KD)[0]))
  grads = jax.jit(jax.grad(f, argnums=(0, 1)))(student, unlab)
  r = np.random.default_rng(5)
  for _ in range(3):   # central differences along random directions
    d = [r.normal(size=x.shape).astype(np.float32) for x in (student, unlab)]
    eps = 1e-2
    fd = (f(student + eps * d[0], unlab + eps * d[1])
          - f(student - eps * d[0], unlab - eps * d[1])) / (2 * eps)
    want = sum(np.sum(g * x) for g, x in zip(grads, d))
    np.testing.assert_allclose(fd, want, rtol=2e-2, atol=1e-4)
  # The weight is not detached (official `KD`): the novel heads receive a
  # gradient only through it, and labelled rows none at all.
  g_unlab = grads[1]
  assert np.abs(g_unlab[:, :, ~LABELLED]).max() > 1e-4
  assert np.all(g_unlab[:, :, LABELLED] == 0)


def _softmax_pseudo(scores, mask, hp):
  del mask, hp
  return jax.nn.softmax(scores / 0.05, -1)


def test_swapped_prediction_equals_hand_computation():
  _, lab, unlab = _logits(2)
  labels = np.array([1, 4, 3, 0, 2, 2])      # unlabelled rows' never read
  per_head = jax.jit(lambda a, b: uno.swapped_prediction_loss(
      a, b, labels, LABELLED, lambda s, m: _softmax_pseudo(s, m, None),
      T_UNO))(lab, unlab)
  want = np.zeros(H)
  for h in range(H):
    for v, o in ((0, 1), (1, 0)):
      for b in range(B):
        logp = np.log(_softmax(np.concatenate([lab[o, b], unlab[o, h, b]])
                               / T_UNO))
        if LABELLED[b]:
          want[h] -= logp[labels[b]] / B
        else:
          want[h] -= (_softmax(unlab[v, h, b] / 0.05) * logp[L:]).sum() / B
  np.testing.assert_allclose(per_head, want / 2, rtol=1e-5)


@pytest.fixture(scope="module")
def step_parts():
  """A tiny UNO net, its discovery init with a teacher, and a step context."""
  model = uno_net.uno_net(L + K, base="small_cnn", num_labeled=L,
                          num_unlabeled=K, num_heads=H, hidden_dim=8,
                          proj_dim=4, widths=(4, 4, 8))
  x = jax.random.uniform(jax.random.PRNGKey(1), (B, 8, 8, 1))
  run = method_lib.RunInfo(60, L + K, 10, 1, 10, B)

  @jax.jit
  def make():
    variables = dict(model.init(jax.random.PRNGKey(0), x, train=False))
    params = variables.pop("params")
    return params, uno.discovery_init(
        True, jax.random.PRNGKey(2),
        method_lib.InitContext(run, params, variables, {}, model))
  params, init = make()
  ctx = method_lib.StepContext(
      model=model, run=run, step=jnp.int32(0), inputs=x,
      model_state=init.model_state,
      trainable=jax.tree.map(lambda _: True, init.params),
      rng_model=jax.random.PRNGKey(3),
      preprocess=lambda b, r: b["image"] + 0.1 * jax.random.normal(
          r, b["image"].shape),
      normalize=lambda x: x)
  batch = {"image": x, "label": jnp.array([1, 7, 3, 5, 8, 0]),
           "labelled": jnp.asarray(LABELLED)}
  return params, init, ctx, batch


def test_alpha_zero_is_the_uno_loss_and_the_teacher_is_frozen(step_parts):
  params, init, ctx, batch = step_parts
  hp = {"temperature": jnp.float32(T_UNO), "epsilon_sk": jnp.float32(0.05),
        "kd_temperature": jnp.float32(T_KD)}

  @jax.jit
  def losses(alpha):
    run = lambda kd, a: uno.discovery_apply(
        _softmax_pseudo, kd, 2, {**hp, "alpha": a}, ctx, init.params,
        init.method_state, batch, jax.random.PRNGKey(4))
    return run(None, alpha)[0], run(crkd.kd_term, alpha)
  base, (zero, _) = losses(jnp.float32(0.0))
  np.testing.assert_allclose(zero, base, rtol=1e-6)
  _, (with_kd, aux) = losses(jnp.float32(0.1))
  np.testing.assert_allclose(with_kd - base, aux.metrics["kd_loss"],
                             rtol=1e-5)
  assert aux.metrics["kd_loss"] > 0
  # Teacher = the initial model without novel heads, untouched by the step.
  teacher = aux.method_state["teacher"]
  assert "head_unlab" not in teacher["params"]
  for a, b in zip(jax.tree.leaves(teacher),
                  jax.tree.leaves(init.method_state["teacher"])):
    np.testing.assert_array_equal(a, b)
  np.testing.assert_array_equal(teacher["params"]["head_lab"]["kernel"],
                                params["head_lab"]["kernel"])
  # Prototypes start (and stay, after_update) at unit length.
  kernel = uno_net.normalize_prototypes(init.params)["head_lab"]["kernel"]
  np.testing.assert_allclose(np.linalg.norm(kernel, axis=0), 1.0, rtol=1e-5)
  assert aux.method_state["loss_per_head"].shape == (H,)


def _official(path, names):
  """The named top-level functions/classes of an official source file."""
  import torch  # pylint: disable=g-import-not-at-top
  import torch.nn.functional as F  # pylint: disable=g-import-not-at-top
  tree = ast.parse(open(path, encoding="utf-8").read())
  keep = [n for n in tree.body if getattr(n, "name", None) in names]
  scope = {"torch": torch, "F": F, "np": np, "nn": torch.nn}
  code = compile(ast.Module(keep, []), path, "exec")
  exec(code, scope)  # pylint: disable=exec-used
  return scope


@pytest.mark.skipif(not os.environ.get("REGJAX_OFFICIAL_CRKD_DIR"),
                    reason="set REGJAX_OFFICIAL_CRKD_DIR to a Cr-KD-NCD "
                           "checkout")
def test_parity_with_the_official_kd_and_swapped_prediction():
  import torch  # pylint: disable=g-import-not-at-top
  root = os.environ["REGJAX_OFFICIAL_CRKD_DIR"]
  losses = _official(os.path.join(root, "model/losses.py"),
                     {"KD", "SinkhornKnopp"})
  kd = losses["KD"]
  rkd = _official(os.path.join(root, "rKD.py"),
                  {"cross_entropy_loss", "swapped_prediction"})

  class Args:
    num_labeled_classes, temperature = L, T_UNO
    num_large_crops = num_crops = V

  teacher, student, unlab = _logits(3)
  t = lambda a: torch.tensor(a, requires_grad=True)
  lab_t = jnp.broadcast_to(student[:, None], (V, H, B, L))
  logits = t(np.concatenate([lab_t, unlab], -1))
  old = torch.tensor(np.broadcast_to(teacher[:, None], (V, H, B, L)).copy())
  official = kd(Args, old, logits, torch.tensor(LABELLED), T=T_KD)
  official.mean().backward()
  ours = lambda lg: jnp.mean(crkd.crkd_loss(
      teacher, lg[:, 0, :, :L], lg[..., L:], ~LABELLED, T_UNO, T_KD)[0])
  lg = jnp.asarray(logits.detach().numpy())
  np.testing.assert_allclose(ours(lg), official.mean().item(), rtol=1e-5)
  # The known-head logits are shared across heads in our layout: compare
  # the gradient summed over heads.
  g = np.asarray(jax.grad(ours)(lg))
  g_off = logits.grad.numpy()
  np.testing.assert_allclose(g[..., L:], g_off[..., L:], atol=1e-6)
  np.testing.assert_allclose(g[:, 0, :, :L], g_off[..., :L].sum(1),
                             atol=1e-6)
  # Swapped prediction: every row unlabelled, targets from a softmax.
  none = np.zeros(B, bool)
  pseudo = np.asarray(jax.nn.softmax(unlab / 0.05, -1))
  targets = np.concatenate([np.zeros((V, H, B, L), np.float32), pseudo], -1)
  off = rkd["swapped_prediction"](Args, torch.tensor(logits.detach().numpy()),
                                  torch.tensor(targets))
  ours = uno.swapped_prediction_loss(
      student, unlab, np.zeros(B, int), none,
      lambda s, m: _softmax_pseudo(s, m, None), T_UNO)
  np.testing.assert_allclose(ours, off.numpy(), rtol=1e-5)
  # UNO's pseudo-labels of the unlabelled rows (official: a sub-batch).
  sk = losses["SinkhornKnopp"]()
  off = sk.forward(torch.tensor(unlab[0, 0][~LABELLED])).numpy()
  ours = uno.sinkhorn_labels({"num_iters_sk": 3})(
      unlab[0, 0], jnp.asarray(~LABELLED), {"epsilon_sk": 0.05})
  np.testing.assert_allclose(np.asarray(ours)[~LABELLED], off, rtol=1e-4,
                             atol=1e-6)
  assert np.all(np.asarray(ours)[LABELLED] == 0)


def test_ncd_metrics_match_clusters_to_novel_classes():
  from algos.discovery import ncd_eval  # pylint: disable=g-import-not-at-top
  labels = np.array([0, 1, 4, 5, 6, 7, 8, 9, 9, 5])
  novel = labels - 5
  heads = np.zeros((len(labels), 2, 5), np.float32)
  # Head 0: the novel classes under a permutation (accuracy 1 after
  # matching); head 1: everything in one cluster.
  heads[np.arange(len(labels)), 0, (novel * 2 + 1) % 5] = 1.0
  heads[:, 1, 0] = 1.0
  known = np.zeros((len(labels), 5), np.float32)
  known[np.arange(3), labels[:3]] = 2.0
  for best, want in ((0, 1.0), (1, 2 / 7)):
    logits = np.concatenate([known, heads[:, best]], -1)
    m = ncd_eval.ncd_metrics(labels, logits, heads, best, 5)
    assert m["novel_acc"] == pytest.approx(want)
    assert m["novel_acc_mean_heads"] == pytest.approx((1.0 + 2 / 7) / 2)
    assert m["old_acc"] == 1.0

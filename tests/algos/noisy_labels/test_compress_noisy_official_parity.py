"""Nested dropout and co-teaching pieces against the official PyTorch code.

The official code (yingyichen-cyy/Nested-Co-teaching) is not in this repo:
the test imports `co_teaching_resnet/train.py` (`GaussianDist`) and
`co_teaching_resnet/loss.py` (`SampleSelection`, `Classification`) from the
checkout named by `REGJAX_OFFICIAL_NESTED_DIR` (the folder holding
`co_teaching_resnet/`) and skips without it:

    git -C <mirror of yingyichen-cyy/Nested-Co-teaching> archive HEAD \\
        co_teaching_resnet | tar -x -C /tmp/nested_official
    REGJAX_OFFICIAL_NESTED_DIR=/tmp/nested_official JAX_PLATFORMS=cpu \\
        python -m pytest -q \\
        tests/algos/noisy_labels/test_compress_noisy_official_parity.py

Their `utils` (a progress bar that reads the terminal size on import) is
stood in by an empty module; `model.py` needs torchvision, so the
classifier (`torch.mm(feature, weight)`, no bias) and `TestNested`'s loop
over the truncations are re-expressed in torch here, line for line. The
forget-rate schedule is main.py's two lines (`rateSchedule`).
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

from algos.noisy_labels import co_teaching
from algos.noisy_labels import nested_dropout
from algos.noisy_labels import two_nets
from common.core import method as method_lib

ENV = "REGJAX_OFFICIAL_NESTED_DIR"
ROOT = os.path.join(os.environ.get(ENV, ""), "co_teaching_resnet")
pytestmark = pytest.mark.skipif(
    not os.path.isfile(os.path.join(ROOT, "loss.py")),
    reason=f"official code: set {ENV} to a checkout of "
           "yingyichen-cyy/Nested-Co-teaching")
torch = pytest.importorskip("torch")


class _Head:  # pylint: disable=too-few-public-methods
  """Stands for a zoo classifier whose final Dense (no bias) is "head"."""
  HEAD_NAME = "head"


def _official():
  """`(train, loss)` modules of co_teaching_resnet, utils stood in."""
  saved = {k: sys.modules.get(k) for k in ("utils", "loss")}
  sys.modules["utils"] = types.ModuleType("utils")
  sys.path.insert(0, ROOT)
  try:
    mods = []
    for name in ("loss", "train"):
      spec = importlib.util.spec_from_file_location(
          name, os.path.join(ROOT, f"{name}.py"))
      mod = importlib.util.module_from_spec(spec)
      sys.modules[name] = mod
      spec.loader.exec_module(mod)
      mods.append(mod)
    return mods[1], mods[0]
  finally:
    sys.path.remove(ROOT)
    for k, v in saved.items():
      if v is None:
        sys.modules.pop(k, None)
      else:
        sys.modules[k] = v


def test_truncation_distribution_equals_gaussian_dist():
  train, _ = _official()
  for mu, std, d in ((0.0, 10.0, 512), (0.0, 100.0, 512), (0.0, 10.0, 64),
                     (3.0, 2.5, 20)):
    np.testing.assert_allclose(
        nested_dropout.truncation_probs(d, mu, std),
        train.GaussianDist(mu, std, d), rtol=1e-5, atol=1e-7)
  # Our draws follow it: k = index + 1 of `np.random.choice(range(d), p)`.
  draws = jax.jit(jax.vmap(lambda k: nested_dropout.sample_num_kept(
      k, 64, 0.0, 10.0)))(jax.random.split(jax.random.PRNGKey(0), 5000))
  freq = np.bincount(np.asarray(draws) - 1, minlength=64) / 5000
  np.testing.assert_allclose(freq, train.GaussianDist(0.0, 10.0, 64),
                             atol=0.02)


def test_forget_rate_schedule_equals_rate_schedule():
  for rate, gradual, epochs in ((0.2, 5, 30), (0.3, 0, 30), (0.4, 10, 30),
                                (0.2, 1, 4)):
    want = np.ones(epochs) * rate
    want[:gradual] = np.linspace(0, rate, gradual)
    got = [float(co_teaching.forget_rate_at(e, rate, float(gradual)))
           for e in range(epochs)]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_selection_and_cross_update_losses_equal_the_official():
  _, loss = _official()
  rng = np.random.default_rng(0)
  half, d, c = 16, 12, 5
  for rate, k in ((0.0, d), (0.2, d), (0.45, 3), (0.3, 7)):
    f1, f2 = rng.normal(size=(2, half, d)).astype(np.float32)
    w1, w2 = rng.normal(size=(2, d, c)).astype(np.float32)
    y1, y2 = rng.integers(0, c, (2, half))
    # Official: selection on the logits of each network's own half.
    t = lambda a: torch.tensor(a)
    l1, l2 = t(f1) @ t(w1), t(f2) @ t(w2)
    idx1, idx2, n = loss.SampleSelection(l1, l2, t(y1), t(y2), rate)
    keep1, keep2 = co_teaching.cross_selection(
        jnp.asarray(l1.numpy()), jnp.asarray(y1), jnp.asarray(l2.numpy()),
        jnp.asarray(y2), jnp.float32(rate))
    np.testing.assert_array_equal(np.flatnonzero(keep1),
                                  np.sort(idx1.numpy()))
    np.testing.assert_array_equal(np.flatnonzero(keep2),
                                  np.sort(idx2.numpy()))
    assert int(np.sum(keep1)) == n
    # Official cross update with the truncation k as a point-mass dist:
    # net 1 on half 2's kept examples, net 2 on half 1's.
    dist = np.eye(d)[k - 1]
    masks = [torch.cat([torch.ones(1, i + 1), torch.zeros(1, d - i - 1)], 1)
             for i in range(d)]
    cls = lambda w: (lambda feat: torch.mm(feat, t(w)))
    o1, o2 = loss.Classification(
        t(f1), t(f2), t(y1), t(y2), idx1, idx2, lambda x: x, cls(w1),
        lambda x: x, cls(w2), dist, masks, 0.0)
    net = _Head()
    mask = nested_dropout.prefix_mask(jnp.int32(k), d)
    ours1 = method_lib.masked_mean(co_teaching.per_example_ce(
        two_nets.head_logits(net, {"head": {"kernel": w1}}, f2 * mask), y2),
        keep2)
    ours2 = method_lib.masked_mean(co_teaching.per_example_ce(
        two_nets.head_logits(net, {"head": {"kernel": w2}}, f1 * mask), y1),
        keep1)
    np.testing.assert_allclose([ours1, ours2], [o1.item(), o2.item()],
                               rtol=1e-5)


def test_choice_of_k_equals_test_nested():
  rng = np.random.default_rng(2)
  n, d, c = 50, 16, 4
  feats = rng.normal(size=(n, 2, d)).astype(np.float32)
  w = rng.normal(size=(2, d, c)).astype(np.float32)
  y = rng.integers(0, c, n)
  # TestNested / co-teaching Evaluation, re-expressed: every mask, mean of
  # the two classifiers' scores, argmax, acc - 1e-5 * index.
  masks = [torch.cat([torch.ones(1, i + 1), torch.zeros(1, d - i - 1)], 1)
           for i in range(d)]
  f1, f2 = torch.tensor(feats[:, 0]), torch.tensor(feats[:, 1])
  outputs = torch.cat([((torch.mm(f1 * m, torch.tensor(w[0]))
                         + torch.mm(f2 * m, torch.tensor(w[1]))) * 0.5
                        ).unsqueeze(0) for m in masks])
  true_pred = torch.sum(outputs.argmax(2) == torch.tensor(y), dim=1).float()
  acc, index = torch.max(true_pred / n - 1e-5 * torch.arange(d).float(), 0)
  counts = nested_dropout.correct_per_truncation(
      feats, w, np.zeros((2, c)), y, np.ones(n, bool))
  np.testing.assert_array_equal(counts, true_pred.numpy())
  k, ours_acc = nested_dropout.choose_num_kept(counts, n)
  assert k == index.item() + 1
  assert ours_acc == pytest.approx(acc.item() + 1e-5 * index.item())

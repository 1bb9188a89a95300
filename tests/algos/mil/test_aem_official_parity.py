"""AEM against the official PyTorch code: forward, loss gradient, one bag.

The official ABMIL (`architecture/transformer.py`) and training step
(`main.py: train_one_epoch`, which computes `CE + lamda * sum(softmax(A) *
log_softmax(A))` and back-propagates it) run on the CPU beside ours with
the same weights and bag; logits, attention and the gradient of every
weight must agree. The official code is not in this repo: the test imports
it from the checkout named by `REGJAX_OFFICIAL_AEM_DIR` and skips without:

    mkdir -p /tmp/aem_official && git -C <mirror of dazhangyu123/AEM> \\
        archive HEAD architecture utils main.py | tar -x -C /tmp/aem_official
    REGJAX_OFFICIAL_AEM_DIR=/tmp/aem_official JAX_PLATFORMS=cpu \\
        python -m pytest -q tests/algos/mil/test_aem_official_parity.py

`main.py`'s imports that only serve logging and data loading (wandb, timm,
torchmetrics, torchvision, h5py, the HDF5 dataset module) are stood in by
empty modules; the optimizer is a stand-in that keeps the gradients.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from algos.mil import aem
from common.models import abmil

ENV = "REGJAX_OFFICIAL_AEM_DIR"
ROOT = os.environ.get(ENV, "")
pytestmark = pytest.mark.skipif(
    not os.path.isfile(os.path.join(ROOT, "main.py")),
    reason=f"official AEM code: set {ENV} to a checkout of dazhangyu123/AEM")
torch = pytest.importorskip("torch")

STUBS = ("wandb", "timm", "timm.utils", "torchmetrics", "torchvision",
         "torchvision.transforms", "h5py", "datasets", "datasets.datasets",
         "yaml")
D_FEAT, D_INNER, N_INST = 12, 8, 9


class _KeepGrads:
  param_groups = [{}]

  def zero_grad(self):
    pass

  def step(self):
    pass


@functools.cache
def _official():
  """(main, architecture.transformer) of the checkout, imported once.

  The stand-ins and the official modules leave `sys.modules` afterwards
  (their names, `main`, `utils`, `datasets`, are too generic to keep); the
  functions keep their own globals.
  """
  added = [m for m in STUBS if m not in sys.modules]
  sys.modules.update({m: mock.MagicMock() for m in added})
  before = set(sys.modules)
  sys.path.insert(0, ROOT)
  try:
    main = importlib.import_module("main")
    transformer = importlib.import_module("architecture.transformer")
  finally:
    sys.path.remove(ROOT)
    for name in added + [m for m in set(sys.modules) - before
                         if m.split(".")[0] in ("main", "architecture",
                                                "utils")]:
      sys.modules.pop(name, None)
  return main, transformer


def _ours_from(model_t):
  t = lambda p: jnp.asarray(p.detach().numpy().T)
  b = lambda p: jnp.asarray(p.detach().numpy())
  a = model_t.attention
  return {"params": {
      "reduce": {"kernel": t(model_t.dimreduction.fc1.weight)},
      "attention_v": {"kernel": t(a.attention_V[0].weight),
                      "bias": b(a.attention_V[0].bias)},
      "attention_u": {"kernel": t(a.attention_U[0].weight),
                      "bias": b(a.attention_U[0].bias)},
      "attention_w": {"kernel": t(a.attention_weights.weight),
                      "bias": b(a.attention_weights.bias)},
      "classifier": {"kernel": t(model_t.classifier.fc.weight),
                     "bias": b(model_t.classifier.fc.bias)}}}


@pytest.mark.parametrize("lam", [0.0, 0.1])
def test_gradients_equal_the_official_train_step(lam):
  main, transformer = _official()
  torch.manual_seed(0)
  conf = mock.Mock(D_feat=D_FEAT, D_inner=D_INNER, n_class=2, arch="abmil",
                   subsampling=1.0, lamda=lam, lr=1e-4, min_lr=0.0,
                   warmup_epoch=0, train_epoch=1, wandb_mode="disabled")
  model_t = transformer.ABMIL(conf)
  x = np.random.default_rng(0).normal(size=(1, N_INST, D_FEAT)).astype(
      np.float32)
  label = torch.tensor([1])
  main.train_one_epoch(model_t, [{"input": torch.tensor(x), "label": label}],
                       _KeepGrads(), "cpu", 0, conf)
  logits_t, scores_t = model_t(torch.tensor(x))

  variables = _ours_from(model_t)
  model = abmil.ABMIL(num_classes=2, inner_dim=D_INNER, attention_dim=128)
  bag = {"instances": jnp.asarray(x), "instance_mask": jnp.ones((1, N_INST),
                                                                bool)}

  def loss_fn(params):
    out = model.apply({"params": params}, bag, train=False)
    value, _ = aem.aem_loss(out["logits"], jnp.array([1]),
                            out["attention_scores"], bag["instance_mask"],
                            jnp.ones((1,), bool), lam)
    return value, out

  (_, out), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      variables["params"])
  np.testing.assert_allclose(out["logits"], logits_t.detach().numpy(),
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(out["attention_scores"],
                             scores_t.detach().numpy()[0], rtol=1e-5,
                             atol=1e-6)
  want = _ours_from(mock.Mock(
      dimreduction=mock.Mock(fc1=mock.Mock(weight=model_t.dimreduction.fc1
                                           .weight.grad)),
      attention=mock.Mock(
          attention_V=[mock.Mock(weight=model_t.attention.attention_V[0]
                                 .weight.grad,
                                 bias=model_t.attention.attention_V[0]
                                 .bias.grad)],
          attention_U=[mock.Mock(weight=model_t.attention.attention_U[0]
                                 .weight.grad,
                                 bias=model_t.attention.attention_U[0]
                                 .bias.grad)],
          attention_weights=mock.Mock(
              weight=model_t.attention.attention_weights.weight.grad,
              bias=model_t.attention.attention_weights.bias.grad)),
      classifier=mock.Mock(fc=mock.Mock(
          weight=model_t.classifier.fc.weight.grad,
          bias=model_t.classifier.fc.bias.grad))))["params"]
  jax.tree.map(lambda g, w: np.testing.assert_allclose(
      g, w, rtol=1e-4, atol=1e-6), grads, want)
